"""Turns finished outside the webhook (deadline passed, async mode) and concurrency.

These tests commit for real (transactional_db): the background thread and the concurrent requests use
their own database connections.
"""

import threading
import time

import pytest
from django.db import connection
from django.test import Client
from django.urls import reverse

from leads.models import Conversation, DeliveryStatus, Lead, Message, MessageRole
from tests.agent.conftest import SECRET, flat_body
from tests.factories import PromptVersionFactory

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def prompt(transactional_db):
    return PromptVersionFactory(is_active=True)


def join_turn_threads(timeout: float = 15.0) -> None:
    """Wait for the background turns (eager mode) to finish before the test reads the database."""
    limit = time.monotonic() + timeout
    for thread in threading.enumerate():
        if thread.name.startswith("agent-turn-"):
            thread.join(max(0.0, limit - time.monotonic()))
            assert not thread.is_alive(), "a background turn did not finish"


def test_slow_model_past_the_deadline_is_delivered_through_sendcontent(
    webhook, prompt, fake_openai, fake_manychat, settings
):
    settings.AGENT_REPLY_DEADLINE_SECONDS = 0.5
    settings.AGENT_MIN_MODEL_SECONDS = 0  # the model is tried, and runs past the deadline
    fake_openai.enqueue(fake_openai.completion({"reply": "too late"}, delay=3))
    fake_openai.reply_with({"reply": "Here are our plans: basic and premium.", "qualified": False})

    assert webhook({}, secret="wrong").status_code == 401  # loads the URLconf and views before timing
    started = time.monotonic()
    response = webhook(flat_body(subscriber_id="4242"))
    elapsed = time.monotonic() - started
    assert response.status_code == 200
    assert response.json() == {"version": "v2", "content": {"messages": []}}
    assert elapsed < 2.5  # answered at the deadline, not when the model finished

    assert fake_manychat.wait_for_calls(1, timeout=10)
    sent = fake_manychat.sent()[0]
    assert sent["subscriber_id"] == 4242
    assert sent["data"]["content"]["type"] == "instagram"
    assert fake_manychat.sent_texts() == ["Here are our plans: basic and premium."]
    join_turn_threads()
    inbound = Message.objects.get(role=MessageRole.LEAD)
    reply = Message.objects.get(in_reply_to=inbound)
    assert reply.prompt_version_id == prompt.pk
    assert inbound.delivery_status == DeliveryStatus.ANSWERED


def test_async_mode_answers_with_the_holding_line_and_delivers_later(
    webhook, prompt, fake_openai, fake_manychat, settings
):
    settings.AGENT_ASYNC_MODE = True
    settings.AGENT_HOLDING_TEXT = "Give me a second…"
    response = webhook(flat_body(channel="whatsapp"))
    content = response.json()["content"]
    assert content["type"] == "whatsapp"
    assert [m["text"] for m in content["messages"]] == ["Give me a second…"]
    assert fake_manychat.wait_for_calls(1, timeout=10)
    assert fake_manychat.sent_texts() == ["Thanks! How can I help?"]
    assert fake_manychat.sent()[0]["data"]["content"]["type"] == "whatsapp"
    join_turn_threads()
    assert Message.objects.filter(role=MessageRole.AGENT, delivery_status="sent").count() == 1


def test_window_closed_is_not_retried_and_flags_the_lead(
    webhook, prompt, fake_openai, fake_manychat, settings
):
    settings.AGENT_ASYNC_MODE = True
    fake_manychat.set_default(fake_manychat.window_closed())
    webhook(flat_body())
    join_turn_threads()
    reply = Message.objects.get(role=MessageRole.AGENT)
    assert reply.delivery_status == DeliveryStatus.UNDELIVERABLE
    assert "3011" in reply.error
    lead = Lead.objects.get()
    assert lead.needs_human is True and lead.bot_paused is False
    assert fake_manychat.calls == 1


def test_task_model_failure_sends_the_fallback_and_leaves_the_turn_to_the_sweep(
    webhook, prompt, fake_openai, fake_manychat, settings
):
    settings.AGENT_ASYNC_MODE = True
    settings.AGENT_FALLBACK_TEXT = "We'll be right with you."
    fake_openai.set_default(fake_openai.error(500))
    webhook(flat_body())
    assert fake_manychat.wait_for_calls(1, timeout=10)
    assert fake_manychat.sent_texts() == ["We'll be right with you."]
    join_turn_threads()
    assert Message.objects.get(role=MessageRole.LEAD).delivery_status == DeliveryStatus.FAILED
    assert Lead.objects.get().needs_human is True


def _post_concurrently(bodies: list[dict]) -> list[int]:
    barrier = threading.Barrier(len(bodies))
    statuses: list[int] = [0] * len(bodies)

    def post(index: int, body: dict) -> None:
        try:
            barrier.wait()
            response = Client().post(
                reverse("webhooks:manychat"),
                data=body,
                content_type="application/json",
                HTTP_X_WEBHOOK_SECRET=SECRET,
            )
            statuses[index] = response.status_code
        finally:
            connection.close()

    threads = [threading.Thread(target=post, args=(i, body)) for i, body in enumerate(bodies)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    return statuses


@pytest.fixture
def postgres_only():
    if connection.vendor != "postgresql":
        pytest.skip("needs PostgreSQL row locks and concurrent writers (CI runs it on PostgreSQL)")


@pytest.mark.postgres
@pytest.mark.parametrize("extra", [{"message_id": "m-1"}, {}])
def test_concurrent_duplicates_store_once_and_call_the_model_once(postgres_only, prompt, fake_openai, extra):
    fake_openai.reply_with({"reply": "hello once"}, delay=0.3)
    statuses = _post_concurrently([flat_body(subscriber_id="777", **extra)] * 6)
    assert statuses == [200] * 6
    assert Lead.objects.count() == 1
    assert Message.objects.filter(role=MessageRole.LEAD).count() == 1
    assert Message.objects.filter(role=MessageRole.AGENT).count() == 1
    assert fake_openai.calls == 1


@pytest.mark.postgres
def test_concurrent_first_messages_make_one_lead_and_one_conversation(postgres_only, prompt, fake_openai):
    statuses = _post_concurrently(
        [flat_body(subscriber_id="888", text=f"first message {i}") for i in range(6)]
    )
    assert statuses == [200] * 6
    assert Lead.objects.filter(manychat_subscriber_id="888").count() == 1
    assert Conversation.objects.count() == 1
    assert Message.objects.filter(role=MessageRole.LEAD).count() == 6
    assert Message.objects.filter(role=MessageRole.AGENT).count() == 6
