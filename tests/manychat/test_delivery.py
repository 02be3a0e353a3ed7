"""A refused or unanswered send: its reason on the message, the lead flagged, admins alerted once a cause."""

import pytest

from agent import manychat, manychat_delivery
from leads.models import DeliveryStatus, Message, Notification
from tests.factories import AgentMessageFactory, ConversationFactory, LeadFactory, MessageFactory

pytestmark = pytest.mark.django_db


def _reply(lead=None):
    conversation = ConversationFactory(lead=lead or LeadFactory())
    asked = MessageFactory(conversation=conversation, text="How much?")
    return AgentMessageFactory(
        conversation=conversation, in_reply_to=asked, text="It is 30 a month.", delivery_status="pending"
    )


def _send_and_record(reply) -> DeliveryStatus:
    lead = reply.conversation.lead
    try:
        manychat.manychat_send_content(
            subscriber_id=lead.manychat_subscriber_id,
            data=manychat.dynamic_block_build(channel=lead.channel, text=reply.text),
        )
    except manychat.ManyChatError as exc:
        return manychat_delivery.delivery_failure_record(message_id=reply.pk, lead=lead, error=exc)
    return DeliveryStatus.SENT


@pytest.mark.parametrize(
    ("refusal", "cause"),
    [
        ("wrong_token", "token_invalid"),
        ("window_closed", "window_closed"),
        ("otn_required", "tag_required"),
        ("notification_reason_required", "tag_required"),
        ("channel_refused", "channel_refused"),
        ("error_with_200", "refused"),
    ],
)
def test_a_refusal_a_person_can_fix_flags_the_lead_and_alerts_admins(
    fake_manychat, make_user, refusal, cause
):
    admin = make_user("admin")
    operator = make_user("operator")
    fake_manychat.set_default(getattr(fake_manychat, refusal)())
    reply = _reply()
    assert _send_and_record(reply) == DeliveryStatus.UNDELIVERABLE
    reply.refresh_from_db()
    assert reply.delivery_status == DeliveryStatus.UNDELIVERABLE
    assert reply.error.startswith(f"{cause}: ")
    lead = reply.conversation.lead
    lead.refresh_from_db()
    assert lead.needs_human and not lead.bot_paused
    assert Notification.objects.filter(recipient=admin, verb=f"manychat.send_refused.{cause}").count() == 1
    assert Notification.objects.filter(recipient=operator, verb="agent.needs_human").count() == 1
    assert not Notification.objects.filter(recipient=operator, verb__startswith="manychat.").exists()


def test_admins_are_alerted_once_per_cause_however_many_leads(fake_manychat, make_user):
    admin = make_user("admin")
    fake_manychat.set_default(fake_manychat.wrong_token())
    replies = [_reply() for _ in range(4)]
    assert [_send_and_record(reply) for reply in replies] == [DeliveryStatus.UNDELIVERABLE] * 4
    alerts = Notification.objects.filter(recipient=admin, verb__startswith="manychat.send_refused")
    assert alerts.count() == 1
    assert "every reply sent through the API" in alerts.get().message
    assert all(reply.conversation.lead.needs_human for reply in replies)
    # A second cause is a second alert; once read, the same cause alerts again.
    fake_manychat.set_default(fake_manychat.window_closed())
    _send_and_record(_reply())
    assert alerts.count() == 2
    alerts.update(read_at="2026-12-01T00:00:00Z")
    fake_manychat.set_default(fake_manychat.wrong_token())
    _send_and_record(_reply())
    assert alerts.filter(read_at__isnull=True).count() == 1


def test_no_answer_after_sending_is_unknown_surfaced_and_not_sent_again(settings, fake_manychat, make_user):
    """D2: the reply may be on the lead's phone already; it is never sent a second time."""
    admin = make_user("admin")
    settings.MANYCHAT_API_TIMEOUT_SECONDS = 0.5
    fake_manychat.set_default(fake_manychat.accepted_late(delay=1.5))
    reply = _reply()
    assert _send_and_record(reply) == DeliveryStatus.UNKNOWN
    reply.refresh_from_db()
    assert reply.delivery_status == DeliveryStatus.UNKNOWN
    assert "outcome_unknown" in reply.error and "Live Chat" in reply.error
    assert reply.conversation.lead.needs_human
    assert Notification.objects.filter(recipient=admin, verb="manychat.send_refused.outcome_unknown").exists()
    assert len(fake_manychat.sent()) == 1


@pytest.mark.parametrize("reply_name", ["too_many_requests", "error"])
def test_what_manychat_did_not_take_stays_pending_unflagged(fake_manychat, make_user, reply_name):
    make_user("admin")
    fake_manychat.set_default(getattr(fake_manychat, reply_name)())
    reply = _reply()
    assert _send_and_record(reply) == DeliveryStatus.PENDING
    reply.refresh_from_db()
    assert reply.delivery_status == DeliveryStatus.PENDING
    assert not reply.conversation.lead.needs_human
    assert not Notification.objects.exists()
    assert Message.objects.get(pk=reply.pk).error.split(":")[0] in ("rate_limited", "server_error")
