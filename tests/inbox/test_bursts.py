"""Message bursts: messages from one lead within the window are answered once, as one turn."""

import json
import threading

import pytest
from django.db import connection

from leads.models import DeliveryStatus, Message, MessageRole

BURST = ["hi", "I saw your ad", "how much is the coaching?", "and do you have evening slots?"]


@pytest.mark.django_db
def test_window_off_answers_each_message(webhook, settings, fake_openai, prompt_version):
    settings.AGENT_BURST_WINDOW_SECONDS = 0
    for text in BURST[:2]:
        webhook("8100", text)
    assert fake_openai.calls == 2


def _store(subscriber_id: str, text: str):
    from agent import turn
    from agent.payloads import payload_parse

    raw = json.dumps({"subscriber_id": subscriber_id, "text": text, "channel": "instagram"}).encode()
    return turn.inbound_store(inbound=payload_parse(raw=raw))


@pytest.mark.django_db
def test_a_message_is_absorbed_by_a_later_one_which_sees_the_whole_burst(prompt_version):
    from agent import turn

    first, second = _store("8101", "first"), _store("8101", "second")
    assert turn.turn_burst_wait(stored=first, window=2) is None  # a later message exists: absorbed
    first.message.refresh_from_db()
    assert first.message.delivery_status == DeliveryStatus.ANSWERED
    waited = turn.turn_burst_wait(stored=second, window=0.3)
    assert waited is not None
    assert [m.text for m in waited.history] == ["first"]  # read again after the window
    second.message.refresh_from_db()
    assert second.message.delivery_status == DeliveryStatus.RECEIVED  # its turn goes on


@pytest.mark.django_db
def test_the_last_message_of_a_burst_gets_one_reply_over_all_of_them(
    webhook, settings, fake_openai, prompt_version
):
    first = _store("8102", "hi")
    settings.AGENT_BURST_WINDOW_SECONDS = 0.5
    response = webhook("8102", "how much is it?")
    assert len(response.json()["content"]["messages"]) == 1
    assert [m["content"] for m in fake_openai.last_messages() if m["role"] == "user"][-2:] == [
        "hi",
        "how much is it?",
    ]
    assert fake_openai.calls == 1
    assert first.message.pk < Message.objects.get(role=MessageRole.AGENT).in_reply_to_id


@pytest.mark.django_db(transaction=True)
def test_four_concurrent_messages_make_one_model_call_with_all_four(settings, fake_openai, prompt_version):
    """Four webhooks within the window, in parallel: one model call whose input holds all four, one reply."""
    if connection.vendor != "postgresql":
        pytest.skip("concurrent writers need PostgreSQL (SQLite's in-memory test database locks tables)")
    from django.test import Client

    from tests.inbox.conftest import SECRET

    settings.AGENT_BURST_WINDOW_SECONDS = 1.5
    bodies: dict[int, dict] = {}

    def send(i: int) -> None:
        import time

        time.sleep(0.3 * i)  # in order, within the window
        response = Client().post(
            "/webhooks/manychat/",
            data=json.dumps({"subscriber_id": "8200", "text": BURST[i], "channel": "instagram"}),
            content_type="application/json",
            HTTP_X_WEBHOOK_SECRET=SECRET,
        )
        bodies[i] = response.json()
        connection.close()

    threads = [threading.Thread(target=send, args=(i,)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert fake_openai.calls == 1
    sent = [m["content"] for m in fake_openai.last_messages() if m["role"] == "user"]
    assert sent[-4:] == BURST
    answers = [bodies[i]["content"]["messages"] for i in range(4)]
    assert answers[:3] == [[], [], []] and len(answers[3]) == 1  # every webhook got a valid body
    assert Message.objects.filter(role=MessageRole.AGENT).count() == 1
    inbound = Message.objects.filter(role=MessageRole.LEAD).order_by("id")
    assert [m.delivery_status for m in inbound] == [DeliveryStatus.ANSWERED] * 4
