"""Draft mode (co-pilot) and shadow mode: the agent writes, a person sends, edits or discards; while a person
handles a lead the agent still writes what it would have said, and nothing is sent."""

import threading

import pytest
from django.db import connection

from agent.inbox import drafts
from config.errors import Conflict, NotFound
from leads.models import DeliveryStatus, Lead, Message, MessageRole
from tests.factories import LeadFactory
from training.models import CorrectionCandidate

pytestmark = pytest.mark.django_db

DRAFTED = "Our coaching is 90 euros a month. Shall I book you a free intro call?"


def _draft_for(webhook, subscriber_id: str, text: str = "How much is the coaching?") -> Message:
    response = webhook(subscriber_id, text)
    assert response.status_code == 200
    assert response.json()["content"]["messages"] == []  # a valid, empty Dynamic Block: nothing sent
    return Message.objects.get(role=MessageRole.AGENT, in_reply_to__text=text)


@pytest.mark.parametrize(
    ("team_default", "lead_setting", "drafted"),
    [(True, None, True), (False, True, True), (True, False, False), (False, None, False)],
)
def test_the_lead_setting_overrides_the_team_default(
    webhook, settings, fake_openai, fake_manychat, prompt_version, team_default, lead_setting, drafted
):
    settings.AGENT_DRAFT_MODE = team_default
    fake_openai.reply_with({"reply": DRAFTED, "qualified": False})
    LeadFactory(manychat_subscriber_id="9100", draft_mode=lead_setting)
    response = webhook("9100", "How much is the coaching?")
    body = [m["text"] for m in response.json()["content"]["messages"]]
    reply = Message.objects.get(role=MessageRole.AGENT)
    lead = Lead.objects.get(manychat_subscriber_id="9100")
    if drafted:
        assert body == []
        assert reply.delivery_status == DeliveryStatus.DRAFT
        assert reply.prompt_version_id == prompt_version.pk  # stamped with the version that wrote it
        assert lead.waiting_since is not None  # it waits for a person in the inbox
    else:
        assert body == [DRAFTED]
        assert reply.delivery_status != DeliveryStatus.DRAFT
    assert fake_manychat.calls == 0


def test_send_as_written_goes_out_through_send_content_once(
    webhook, operator, fake_openai, fake_manychat, prompt_version, django_capture_on_commit_callbacks
):
    fake_openai.reply_with({"reply": DRAFTED, "qualified": False})
    lead = LeadFactory(manychat_subscriber_id="9101", draft_mode=True)
    draft = _draft_for(webhook, "9101")
    with django_capture_on_commit_callbacks(execute=True):
        sent = drafts.inbox_draft_send(draft_id=draft.pk, user=operator, text=DRAFTED, lead=lead)
    assert sent.pk == draft.pk  # unchanged text: the agent's own reply goes out
    draft.refresh_from_db()
    assert draft.delivery_status == DeliveryStatus.SENT
    assert fake_manychat.sent_texts() == [DRAFTED]
    assert not CorrectionCandidate.objects.exists()  # nothing to correct
    lead.refresh_from_db()
    assert lead.waiting_since is None and lead.taken_over_at is None  # the bot keeps drafting
    with pytest.raises(Conflict), django_capture_on_commit_callbacks(execute=True):
        drafts.inbox_draft_send(draft_id=draft.pk, user=operator, lead=lead)  # a double click
    assert fake_manychat.sent_texts() == [DRAFTED]


def test_an_edited_draft_is_sent_as_a_persons_message_and_prefills_a_correction(
    webhook, operator, fake_openai, fake_manychat, prompt_version, django_capture_on_commit_callbacks
):
    fake_openai.reply_with({"reply": DRAFTED, "qualified": False})
    lead = LeadFactory(manychat_subscriber_id="9102", draft_mode=True)
    draft = _draft_for(webhook, "9102")
    edited = "It is 90 euros a month, and the first week is free. Want me to book you in?"
    with django_capture_on_commit_callbacks(execute=True):
        sent = drafts.inbox_draft_send(draft_id=draft.pk, user=operator, text=edited, lead=lead)
    assert sent.role == MessageRole.OPERATOR and sent.sent_by_id == operator.pk
    sent.refresh_from_db()
    assert sent.delivery_status == DeliveryStatus.SENT
    assert fake_manychat.sent_texts() == [edited]  # exactly the edited text, never the draft
    draft.refresh_from_db()
    assert draft.delivery_status == DeliveryStatus.DRAFT_EDITED
    candidate = CorrectionCandidate.objects.get()
    assert (candidate.agent_message_id, candidate.operator_message_id) == (draft.pk, sent.pk)
    assert candidate.user_message == "How much is the coaching?"
    assert candidate.ai_response == DRAFTED and candidate.expected_response == edited
    lead.refresh_from_db()
    assert lead.taken_over_at is None  # sending a draft does not silence the co-pilot


def test_discard_then_every_later_action_is_a_conflict(
    webhook, operator, fake_openai, fake_manychat, prompt_version
):
    lead = LeadFactory(manychat_subscriber_id="9103", draft_mode=True)
    draft = _draft_for(webhook, "9103")
    discarded = drafts.inbox_draft_discard(draft_id=draft.pk, user=operator, lead=lead)
    assert discarded.delivery_status == DeliveryStatus.DRAFT_DISCARDED
    with pytest.raises(Conflict):
        drafts.inbox_draft_discard(draft_id=draft.pk, user=operator, lead=lead)
    with pytest.raises(Conflict):
        drafts.inbox_draft_send(draft_id=draft.pk, user=operator, text="changed", lead=lead)
    assert fake_manychat.calls == 0
    assert not Message.objects.filter(role=MessageRole.OPERATOR).exists()


def test_a_draft_of_another_lead_is_not_found(webhook, operator, fake_openai, prompt_version):
    LeadFactory(manychat_subscriber_id="9104", draft_mode=True)
    draft = _draft_for(webhook, "9104")
    with pytest.raises(NotFound):
        drafts.inbox_draft_send(draft_id=draft.pk, user=operator, lead=LeadFactory())


def test_viewers_may_not_send_or_discard(webhook, viewer, fake_openai, prompt_version):
    from django.core.exceptions import PermissionDenied

    LeadFactory(manychat_subscriber_id="9105", draft_mode=True)
    draft = _draft_for(webhook, "9105")
    with pytest.raises(PermissionDenied):
        drafts.inbox_draft_send(draft_id=draft.pk, user=viewer)
    with pytest.raises(PermissionDenied):
        drafts.inbox_draft_discard(draft_id=draft.pk, user=viewer)
    draft.refresh_from_db()
    assert draft.delivery_status == DeliveryStatus.DRAFT


def test_drafts_never_sent_are_not_in_the_conversation_the_model_reads(
    webhook, operator, fake_openai, prompt_version
):
    lead = LeadFactory(manychat_subscriber_id="9106", draft_mode=True)
    fake_openai.reply_with({"reply": "A draft nobody sent", "qualified": False})
    draft = _draft_for(webhook, "9106", "first question")
    drafts.inbox_draft_discard(draft_id=draft.pk, user=operator, lead=lead)
    Lead.objects.filter(pk=lead.pk).update(draft_mode=False)
    fake_openai.reply_with({"reply": "The bot's answer", "qualified": False})
    webhook("9106", "second question")
    contents = [m["content"] for m in fake_openai.last_messages()[1:]]
    assert contents == ["first question", "second question"]


@pytest.mark.django_db(transaction=True)
def test_two_people_sending_one_draft_at_once_send_it_once(
    webhook, operator, manager, fake_openai, fake_manychat, prompt_version
):
    """Two sends race on one draft (two operators, or a double click on two workers): the row lock and the
    conditional UPDATE let exactly one through; the other gets a Conflict, and ManyChat one message."""
    if connection.vendor != "postgresql":
        pytest.skip("concurrent writers need PostgreSQL (SQLite's in-memory test database locks tables)")
    fake_openai.reply_with({"reply": DRAFTED, "qualified": False})
    lead = LeadFactory(manychat_subscriber_id="9107", draft_mode=True)
    draft = _draft_for(webhook, "9107")
    barrier = threading.Barrier(2)
    results: dict[str, str] = {}

    def send(who, text):
        try:
            barrier.wait(5)
            message = drafts.inbox_draft_send(draft_id=draft.pk, user=who, text=text, lead=lead)
            results[who.username] = f"sent {message.pk}"
        except Conflict as exc:
            results[who.username] = f"conflict: {exc.message}"
        finally:
            connection.close()

    threads = [
        threading.Thread(target=send, args=(operator, "Edited by the operator")),
        threading.Thread(target=send, args=(manager, None)),
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    outcomes = sorted(value.split(":")[0].split(" ")[0] for value in results.values())
    assert outcomes == ["conflict", "sent"], results
    fake_manychat.wait_for_calls(1, timeout=10)
    assert len(fake_manychat.sent_texts()) == 1
    draft.refresh_from_db()
    assert draft.delivery_status in (DeliveryStatus.SENT, DeliveryStatus.DRAFT_EDITED)


# --- Shadow mode ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("shadow_on", [True, False])
def test_shadow_mode_writes_what_the_bot_would_have_said_and_sends_nothing(
    webhook,
    operator,
    settings,
    fake_openai,
    fake_manychat,
    prompt_version,
    shadow_on,
    django_capture_on_commit_callbacks,
    monkeypatch,
):
    from agent.inbox import tasks
    from agent.inbox.services import inbox_take_over

    settings.AGENT_SHADOW_MODE = shadow_on
    # The task runs inline here (a background thread could not see this test's transaction).
    monkeypatch.setattr(drafts, "shadow_schedule", lambda *, message_id: tasks.write_shadow_draft(message_id))
    fake_openai.reply_with({"reply": "Hi Lena! The coaching is 90 euros a month.", "qualified": True})
    lead = LeadFactory(manychat_subscriber_id="9108")
    inbox_take_over(lead=lead, user=operator)
    response = webhook("9108", "How much?")
    assert response.json()["content"]["messages"] == []
    inbound = Message.objects.get(role=MessageRole.LEAD)
    assert inbound.delivery_status == DeliveryStatus.SKIPPED  # the bot stayed silent
    shadows = list(Message.objects.filter(role=MessageRole.AGENT))
    if shadow_on:
        assert [(m.text, m.delivery_status, m.in_reply_to_id) for m in shadows] == [
            ("Hi Lena! The coaching is 90 euros a month.", DeliveryStatus.SHADOW, inbound.pk)
        ]
        assert shadows[0].prompt_version_id == prompt_version.pk
        lead.refresh_from_db()
        assert lead.status == "new"  # a shadow changes nothing: not qualified by it
        with pytest.raises(Conflict):
            drafts.inbox_draft_send(draft_id=shadows[0].pk, user=operator, lead=lead)
        assert tasks.write_shadow_draft(inbound.pk) is None  # a repeated task adds nothing
    else:
        assert shadows == [] and fake_openai.calls == 0
    assert fake_manychat.calls == 0


def test_the_project_default_burst_window_is_three_seconds():
    """The tests run with the window at 0 (tests/conftest.py); production answers bursts by default."""
    import os
    import subprocess
    import sys

    env = {k: v for k, v in os.environ.items() if k != "AGENT_BURST_WINDOW_SECONDS"}
    env["DJANGO_DEBUG"] = "1"
    shown = subprocess.run(
        [sys.executable, "-c", "import config.settings as s; print(s.AGENT_BURST_WINDOW_SECONDS)"],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    assert shown.stdout.strip() == "3.0"
