"""The takeover lock in the turn: a reply that becomes ready after a person took over is kept, never sent."""

import pytest

from agent.inbox import services
from leads.models import DeliveryStatus, Lead, Message, MessageRole, Notification
from tests.factories import LeadFactory

pytestmark = pytest.mark.django_db(transaction=True)


def _take_over_while_thinking(fake_openai, operator, subscriber_id: str, reply: dict | None = None):
    """The model answers only after a person took the lead over (the fake takes it during the call)."""

    def slow(request):
        lead = Lead.objects.get(manychat_subscriber_id=subscriber_id)
        services.inbox_take_over(lead=lead, user=operator)
        return fake_openai.completion(
            reply or {"reply": "Our plans start at 49 euros.", "qualified": False, "handoff": False}
        )

    fake_openai.route("messages", slow)


def test_a_reply_ready_after_a_takeover_is_kept_and_never_returned(
    webhook, operator, fake_openai, fake_manychat, prompt_version
):
    LeadFactory(manychat_subscriber_id="7001")
    _take_over_while_thinking(fake_openai, operator, "7001")
    response = webhook("7001", "How much is it?")
    assert response.status_code == 200
    assert response.json()["content"]["messages"] == []  # ManyChat still gets a valid (silent) body
    reply = Message.objects.get(role=MessageRole.AGENT)
    assert reply.text == "Our plans start at 49 euros."
    assert reply.delivery_status == DeliveryStatus.SUPERSEDED
    assert fake_manychat.sent() == []


def test_the_task_never_sends_a_superseded_reply(
    settings, webhook, operator, fake_openai, fake_manychat, prompt_version
):
    from agent.tasks import complete_turn

    settings.AGENT_ASYNC_MODE = True
    LeadFactory(manychat_subscriber_id="7002")
    _take_over_while_thinking(fake_openai, operator, "7002")
    inbound_response = webhook("7002", "Hello?")
    assert inbound_response.status_code == 200
    inbound = Message.objects.get(role=MessageRole.LEAD)
    complete_turn.apply(args=[inbound.pk])  # the background run may have finished it already
    reply = Message.objects.get(role=MessageRole.AGENT, in_reply_to=inbound)
    assert reply.delivery_status == DeliveryStatus.SUPERSEDED
    complete_turn.apply(args=[inbound.pk])  # a retry or the sweep does not send it either
    assert fake_manychat.sent() == []


def test_a_handoff_decided_by_the_turn_itself_still_goes_out(webhook, fake_openai, prompt_version):
    fake_openai.reply_with(
        {"reply": "Let me get a person.", "qualified": False, "handoff": True, "handoff_reason": "asked"}
    )
    response = webhook("7003", "I want a human")
    assert [m["text"] for m in response.json()["content"]["messages"]] == ["Let me get a person."]


def test_a_lead_writing_while_a_person_handles_it_waits_and_notifies_once(
    webhook, operator, fake_openai, prompt_version, settings
):
    settings.AGENT_SHADOW_MODE = False  # no shadow drafts either (tests/inbox/test_drafts.py has them)
    lead = LeadFactory(manychat_subscriber_id="7004")
    services.inbox_take_over(lead=lead, user=operator)
    webhook("7004", "Hello?")
    webhook("7004", "Anyone?")
    lead.refresh_from_db()
    first = Message.objects.filter(role=MessageRole.LEAD).order_by("id").first()
    assert lead.waiting_since == first.created_at
    assert fake_openai.calls == 0
    assert Notification.objects.filter(recipient=operator, verb="lead.message_while_paused").count() == 1
