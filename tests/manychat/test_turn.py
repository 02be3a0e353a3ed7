"""ManyChat as it really is, through the turn (agent/turn.py): webhook and task, fake ManyChat and model."""

import json

import pytest

from agent import contact_token, turn
from agent import selectors as agent_selectors
from agent.tasks import complete_turn
from leads.models import Activity, DeliveryStatus, Lead, Message, MessageRole, Notification
from tests.agent.conftest import flat_body
from tests.factories import LeadFactory, MessageFactory

pytestmark = pytest.mark.django_db


def texts(response) -> list[str]:
    return [m["text"] for m in response.json()["content"]["messages"]]


def _inbound(text="How much is it?", lead=None) -> Message:
    lead = lead or LeadFactory()
    message = MessageFactory(conversation__lead=lead, text=text)
    return message


# --- Delivery: refusals and timeouts (S1, S2, D2) ---------------------------------------------------------


def test_a_task_whose_send_times_out_marks_it_unknown_and_never_sends_twice(
    settings, active_prompt, fake_openai, fake_manychat, make_user
):
    make_user("admin")
    settings.MANYCHAT_API_TIMEOUT_SECONDS = 0.5
    fake_manychat.set_default(fake_manychat.accepted_late(delay=1.5))
    inbound = _inbound()
    assert complete_turn.apply(args=[inbound.pk]).get() == turn.TurnState.UNDELIVERABLE
    reply = Message.objects.get(in_reply_to=inbound)
    assert reply.delivery_status == DeliveryStatus.UNKNOWN
    assert "Live Chat" in reply.error
    assert Lead.objects.get(pk=inbound.conversation.lead_id).needs_human
    # The sweep and Celery leave it alone: one send in all.
    assert complete_turn.apply(args=[inbound.pk]).get() == turn.TurnState.ALREADY_DONE
    assert inbound.pk not in agent_selectors.turn_list_incomplete()["undelivered"]
    assert len(fake_manychat.sent()) == 1


def test_a_wrong_token_flags_every_lead_and_alerts_admins_once(
    active_prompt, fake_openai, fake_manychat, make_user
):
    admin = make_user("admin")
    fake_manychat.set_default(fake_manychat.wrong_token())
    inbounds = [_inbound() for _ in range(3)]
    for inbound in inbounds:
        complete_turn.apply(args=[inbound.pk]).get()
    replies = Message.objects.filter(role=MessageRole.AGENT)
    assert {r.delivery_status for r in replies} == {DeliveryStatus.UNDELIVERABLE}
    assert all(r.error.startswith("token_invalid: ") for r in replies)
    assert Lead.objects.filter(needs_human=True).count() == 3
    assert (
        Notification.objects.filter(recipient=admin, verb="manychat.send_refused.token_invalid").count() == 1
    )


def test_a_429_keeps_the_reply_pending_for_a_retry(settings, active_prompt, fake_openai, fake_manychat):
    settings.MANYCHAT_MAX_ATTEMPTS = 1
    fake_manychat.set_default(fake_manychat.too_many_requests(retry_after=0))
    inbound = _inbound()
    with pytest.raises(turn.DeliveryRetryable):
        turn.turn_complete(message_id=inbound.pk)
    reply = Message.objects.get(in_reply_to=inbound)
    assert reply.delivery_status == DeliveryStatus.PENDING
    fake_manychat.set_default(fake_manychat.success())
    assert turn.turn_complete(message_id=inbound.pk) == turn.TurnState.DELIVERED
    assert fake_manychat.sent_texts()[-1] == reply.text


# --- Dedupe (D5, 14.7) -----------------------------------------------------------------------------------


def test_yes_to_two_questions_in_a_row_is_answered_twice(webhook, active_prompt, fake_openai):
    fake_openai.enqueue(
        fake_openai.completion({"reply": "Great! Would you like the yearly plan?"}),
        fake_openai.completion({"reply": "Perfect, and shall I book your first class?"}),
    )
    first = webhook(flat_body(text="yes"))
    second = webhook(flat_body(text="yes"))
    assert texts(first) == ["Great! Would you like the yearly plan?"]
    assert texts(second) == ["Perfect, and shall I book your first class?"]
    assert fake_openai.calls == 2
    assert Message.objects.filter(role=MessageRole.LEAD, text="yes").count() == 2


def test_a_redelivery_before_any_reply_is_still_one_message(webhook, active_prompt, fake_openai, settings):
    # The first delivery is stored and its turn is still running (no reply yet): ManyChat's retry.
    lead = LeadFactory(manychat_subscriber_id="9001")
    MessageFactory(conversation__lead=lead, text="Hi, how much is a membership?")
    response = webhook(flat_body())
    assert response.json()["content"]["messages"] == []
    assert fake_openai.calls == 0
    assert Message.objects.filter(role=MessageRole.LEAD).count() == 1


def test_the_dedupe_window_covers_manychat_retries_only(settings):
    assert 10 < settings.AGENT_DEDUPE_WINDOW_SECONDS <= 30


# --- Attachments and voice notes --------------------------------------------------------------------------


def test_an_image_without_text_is_stored_and_answered(webhook, active_prompt, fake_openai):
    response = webhook(flat_body(text=None, attachment_url="https://scontent.fbcdn.net/v/p.jpg"))
    assert response.status_code == 200
    message = Message.objects.get(role=MessageRole.LEAD)
    assert (message.text, message.attachment_url, message.attachment_kind) == (
        "",
        "https://scontent.fbcdn.net/v/p.jpg",
        "image",
    )
    assert "image" in fake_openai.last_messages()[-1]["content"]
    assert texts(response) == ["Thanks! How can I help?"]


def test_a_voice_note_is_transcribed_and_the_agent_reads_the_transcript(
    settings, webhook, active_prompt, fake_openai, fake_manychat
):
    settings.OPENAI_TRANSCRIBE_MODEL = "whisper-1"
    url = f"{fake_manychat.url}/media/voice.ogg"
    response = webhook(flat_body(text=url))
    assert response.status_code == 200
    assert response.json()["content"]["messages"] == []  # never transcribed inside ManyChat's window
    assert fake_openai.calls == 0
    message = Message.objects.get(role=MessageRole.LEAD)
    assert complete_turn.apply(args=[message.pk]).get() == turn.TurnState.DELIVERED
    message.refresh_from_db()
    assert message.attachment_url == url and message.attachment_kind == "audio"
    assert message.text == fake_openai.transcript
    chat = [r for r in fake_openai.requests if r.path.endswith("/chat/completions")]
    assert json.loads(chat[-1].body)["messages"][-1]["content"] == fake_openai.transcript
    assert fake_manychat.sent_texts() == ["Thanks! How can I help?"]


@pytest.mark.parametrize("fallback", ["ask_text", "handoff"])
def test_a_voice_note_without_transcription_asks_for_text_or_hands_off(
    settings, webhook, active_prompt, fake_openai, fake_manychat, fallback
):
    settings.OPENAI_TRANSCRIBE_MODEL = ""
    settings.AGENT_VOICE_FALLBACK = fallback
    response = webhook(flat_body(text=f"{fake_manychat.url}/media/voice.ogg"))
    assert response.status_code == 200
    assert fake_openai.calls == 0
    message = Message.objects.get(role=MessageRole.LEAD)
    assert message.attachment_kind == "audio"  # stored, never dropped
    lead = Lead.objects.get()
    if fallback == "ask_text":
        assert texts(response) == [settings.AGENT_VOICE_ASK_TEXT]
        assert not lead.needs_human
    else:
        assert lead.needs_human and "voice" in lead.handoff_reason.lower()


# --- Custom fields and the qualification flow ---------------------------------------------------------------


def test_a_qualified_turn_writes_fields_and_starts_the_flow(
    settings, active_prompt, fake_openai, fake_manychat, django_capture_on_commit_callbacks
):
    settings.MANYCHAT_FIELD_MAP = {"budget": "lead_budget"}
    settings.MANYCHAT_QUALIFIED_FLOW_NS = "content20261201_42"
    fake_manychat.custom_fields.append({"id": 13, "name": "lead_budget", "type": "number", "description": ""})
    fake_openai.reply_with({"reply": "You qualify!", "qualified": True, "lead_fields": {"budget": "300"}})
    inbound = _inbound()
    with django_capture_on_commit_callbacks(execute=True):
        assert turn.turn_complete(message_id=inbound.pk) == turn.TurnState.DELIVERED
    (fields,) = fake_manychat.calls_to("/fb/subscriber/setCustomFields")
    assert {"field_id": 13, "field_value": 300} in fields["fields"]
    assert {"field_id": 11, "field_value": "qualified"} in fields["fields"]
    assert fake_manychat.calls_to("/fb/sending/sendFlow") == [
        {
            "subscriber_id": int(inbound.conversation.lead.manychat_subscriber_id),
            "flow_ns": "content20261201_42",
        }
    ]


# --- The contact token -------------------------------------------------------------------------------------


def test_the_contact_token_guards_a_leads_history(
    settings, webhook, active_prompt, fake_openai, fake_manychat, django_capture_on_commit_callbacks
):
    settings.MANYCHAT_CONTACT_TOKEN_FIELD = "ai_contact_token"
    settings.MANYCHAT_API_TOKEN = fake_manychat.token
    with django_capture_on_commit_callbacks(execute=True):
        webhook(flat_body(text="My budget is 500 and my email is mia@example.com"))
    (issued,) = fake_manychat.calls_to("/fb/subscriber/setCustomFieldByName")
    token = issued["field_value"]
    lead = Lead.objects.get()
    assert lead.manychat_token_hash == contact_token.token_hash(token)

    # Without the token: answered from its own message alone, and flagged.
    webhook(flat_body(text="What did I tell you before?"))
    sent = [json.loads(r.body) for r in fake_openai.requests if r.path.endswith("/chat/completions")]
    alone = sent[-1]["messages"]
    assert [m["role"] for m in alone] == ["system", "user"]
    assert "mia@example.com" not in json.dumps(alone)
    assert Activity.objects.filter(lead=lead, verb="agent.contact_token_refused").exists()
    assert Lead.objects.get(pk=lead.pk).needs_human

    # With it: the history is there.
    webhook(flat_body(text="And my budget?", contact_token=token))
    sent = [json.loads(r.body) for r in fake_openai.requests if r.path.endswith("/chat/completions")]
    assert "My budget is 500" in json.dumps(sent[-1]["messages"])
