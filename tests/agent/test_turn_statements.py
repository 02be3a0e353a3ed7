"""A returning lead's webhook turn in at most 6 SQL statements (issue #21), and the in-process copy of the
live release (prompts/live.py) that makes it possible, invalidated on every worker when the release
changes."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from agent import credit_once
from leads.models import Conversation, Lead, Message, MessageRole
from prompts import live
from prompts.models import PromptVersion
from prompts.services import prompt_version_activate
from tests.agent.conftest import flat_body
from tests.factories import PromptVersionFactory

pytestmark = pytest.mark.django_db(transaction=True)  # real BEGIN/COMMIT, as in production

TRANSACTION_CONTROL = ("BEGIN", "COMMIT", "ROLLBACK", "SAVEPOINT", "RELEASE")


def statements(captured) -> list[str]:
    return [
        q["sql"]
        for q in captured.captured_queries
        if not q["sql"].lstrip().upper().startswith(TRANSACTION_CONTROL)
    ]


@pytest.fixture
def live_cache(settings):
    settings.PROMPT_LIVE_CACHE_SECONDS = 5.0
    live.live_forget()
    credit_once.credit_forget()
    yield
    live.live_forget()
    credit_once.credit_forget()


@pytest.fixture
def prompt(transactional_db):
    return PromptVersionFactory(content="You are Ava.", is_active=True)


@pytest.fixture
def no_broker_calls(monkeypatch):
    """Counts what turn_credit queues (the prompts.record_reply task) instead of running it."""
    queued: list[int] = []
    from prompts import tasks

    monkeypatch.setattr(tasks.record_reply, "delay", lambda message_id: queued.append(message_id))
    monkeypatch.setattr(tasks.record_reply, "apply_async", lambda args, **kw: queued.append(args[0]))
    return queued


def test_a_returning_leads_turn_is_at_most_six_statements(webhook, prompt, fake_openai, live_cache):
    assert webhook(flat_body(text="first")).status_code == 200
    # The second message is the one-time funnel step (new -> engaged: turn_engages), a turn with effects.
    assert webhook(flat_body(text="second")).status_code == 200
    assert Lead.objects.get().status == "engaged"
    with CaptureQueriesContext(connection) as captured:
        response = webhook(flat_body(text="third"))
    assert [m["text"] for m in response.json()["content"]["messages"]] == ["Thanks! How can I help?"]
    sql = statements(captured)
    # PostgreSQL folds the stamps into the message's insert and the turn's "answered" into the reply's;
    # other databases take the ORM's separate statements (and read the claimed reply back).
    expected = {"postgresql": 6, "sqlite": 10}[connection.vendor]
    assert len(sql) == expected, "\n".join(s[:160] for s in sql)
    # What the turn wrote is all there: the message, its reply, the turn answered, the stamps.
    inbound = Message.objects.filter(role=MessageRole.LEAD).latest("id")
    reply = Message.objects.get(in_reply_to=inbound, role=MessageRole.AGENT)
    assert inbound.delivery_status == "answered" and inbound.attempts == 1
    assert reply.delivery_status == "returned" and reply.prompt_version_id == prompt.pk
    lead, conversation = Lead.objects.get(), Conversation.objects.get()
    assert lead.last_message_at == conversation.last_message_at  # stamped by the insert's statement
    assert abs((inbound.created_at - lead.last_message_at).total_seconds()) < 1


def test_the_stamps_move_with_each_message(webhook, prompt, fake_openai, live_cache):
    webhook(flat_body(text="first"))
    first = Lead.objects.get().last_message_at
    webhook(flat_body(text="second"))
    lead, conversation = Lead.objects.get(), Conversation.objects.get()
    assert lead.last_message_at > first
    assert conversation.last_message_at == lead.last_message_at


def test_the_version_credit_is_queued_once_per_conversation_and_release(
    webhook, prompt, fake_openai, live_cache, no_broker_calls, admin_user
):
    for n in range(3):
        webhook(flat_body(text=f"message {n}"))
    assert len(no_broker_calls) == 1  # the first reply; later ones add nothing the figures read
    newer = PromptVersionFactory(content="You are Ava, v2.")
    prompt_version_activate(version=newer, user=admin_user)
    webhook(flat_body(text="after the release"))
    assert len(no_broker_calls) == 2
    assert Message.objects.filter(role=MessageRole.AGENT).latest("id").prompt_version_id == newer.pk


def test_activation_reaches_the_next_turn_at_once(webhook, prompt, fake_openai, live_cache, admin_user):
    webhook(flat_body(text="first"))
    newer = PromptVersionFactory(content="You are Ava, v2.")
    prompt_version_activate(version=newer, user=admin_user)  # bumps the shared stamp
    webhook(flat_body(text="second"))
    assert Message.objects.filter(role=MessageRole.AGENT).latest("id").prompt_version_id == newer.pk


def test_another_worker_s_activation_is_seen_through_the_shared_stamp(
    webhook, prompt, fake_openai, live_cache
):
    """A change made elsewhere (another process) moves only the shared stamp: this process rereads."""
    webhook(flat_body(text="first"))
    newer = PromptVersionFactory(content="You are Ava, v2.")
    PromptVersion.objects.filter(pk=prompt.pk).update(is_active=False)
    PromptVersion.objects.filter(pk=newer.pk).update(is_active=True)
    webhook(flat_body(text="still cached"))  # nobody said anything: the copy is still used (within the TTL)
    assert Message.objects.filter(role=MessageRole.AGENT).latest("id").prompt_version_id == prompt.pk
    live._stamp_new()  # what live_bump() does in the other process
    webhook(flat_body(text="after the other worker's bump"))
    assert Message.objects.filter(role=MessageRole.AGENT).latest("id").prompt_version_id == newer.pk


def test_the_copy_expires_after_its_ttl(webhook, prompt, fake_openai, live_cache, settings, time_machine):
    webhook(flat_body(text="first"))
    webhook(flat_body(text="second"))  # the lead's one-time engaged step, out of the way
    with CaptureQueriesContext(connection) as warm:
        webhook(flat_body(text="warm"))
    settings.PROMPT_LIVE_CACHE_SECONDS = 0.000001
    with CaptureQueriesContext(connection) as expired:
        webhook(flat_body(text="expired"))
    assert len(statements(expired)) == len(statements(warm)) + 2  # the experiment and active version reread


def test_a_new_lead_writing_again_after_the_reply_is_engaged_once(webhook, prompt, fake_openai, live_cache):
    from leads.models import Activity

    assert webhook(flat_body(text="first")).status_code == 200
    assert Lead.objects.get().status == "new"  # the agent answered; the lead has not written back yet
    for text in ("second", "third"):
        assert webhook(flat_body(text=text)).status_code == 200
    lead = Lead.objects.get()
    assert lead.status == "engaged"
    changes = list(
        Activity.objects.filter(lead=lead, verb="lead.status_changed").values_list("data", flat=True)
    )
    assert len(changes) == 1
    assert changes[0]["from"] == "new" and changes[0]["to"] == "engaged" and changes[0]["source"] == "agent"
