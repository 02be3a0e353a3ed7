"""The agent's daily caps (agent/budget.py) also bound the model calls made outside a turn: follow-ups and
shadow drafts. Over a cap, no model call; under it, the call is counted on the same counters."""

from decimal import Decimal

import pytest
from django.core.cache import cache
from django.utils import timezone

from agent import budget
from agent.followups import services
from agent.followups.models import FollowUp, FollowUpStatus
from agent.inbox import drafts
from agent.inbox.services import inbox_take_over
from leads.models import Message, MessageRole
from tests.factories import ConversationFactory, LeadFactory

pytestmark = pytest.mark.django_db

FOLLOW = {"reply": "Just checking in!", "qualified": False, "lead_fields": {}, "handoff": False}


@pytest.fixture(autouse=True)
def _no_caps(settings):
    for name in ("AGENT_DAILY_TOKEN_CAP", "AGENT_DAILY_USD_CAP", "AGENT_LEAD_DAILY_TOKEN_CAP"):
        setattr(settings, name, 0)
    settings.AGENT_LEAD_DAILY_USD_CAP = 0
    settings.AGENT_MODEL_PRICES = {"fake-gpt": (Decimal("0.15"), Decimal("0.60"))}


@pytest.mark.parametrize("setting", ["AGENT_DAILY_TOKEN_CAP", "AGENT_LEAD_DAILY_TOKEN_CAP"])
def test_a_follow_up_over_a_cap_is_skipped_with_the_cap_named(
    silent_lead, settings, fake_openai, fake_manychat, setting
):
    setattr(settings, setting, 100)  # less than one call's estimate
    fake_openai.reply_with(FOLLOW)
    lead, _ = silent_lead(hours_ago=5)

    outcome = services.followup_send(lead_id=lead.pk)

    assert outcome.state == "budget_cap"
    assert fake_openai.calls == 0 and fake_manychat.sent_texts() == []
    followup = FollowUp.objects.get(lead=lead)
    assert followup.status == FollowUpStatus.SKIPPED and setting in followup.reason


def test_a_follow_up_under_the_caps_is_counted_on_them(silent_lead, settings, fake_openai, fake_manychat):
    settings.AGENT_DAILY_TOKEN_CAP = 1_000_000
    fake_openai.reply_with(FOLLOW)
    lead, _ = silent_lead(hours_ago=5)
    assert services.followup_send(lead_id=lead.pk).state == "sent"
    key = budget._key(purpose="agent", day=timezone.localdate(), lead_id=None, unit="tokens")
    sent = Message.objects.get(role=MessageRole.AGENT, text=FOLLOW["reply"])
    replies = Message.objects.filter(role=MessageRole.AGENT).exclude(pk=sent.pk)
    before = sum(
        (m.prompt_tokens or 0) + (m.completion_tokens or 0)
        for m in replies
        if m.created_at.date() == timezone.localdate()
    )
    assert cache.get(key) == before + sent.prompt_tokens + sent.completion_tokens


def test_no_shadow_draft_over_a_cap(settings, fake_openai, operator, prompt_version):
    settings.AGENT_SHADOW_MODE = True
    settings.AGENT_LEAD_DAILY_TOKEN_CAP = 100
    fake_openai.reply_with({"reply": "What the bot would say.", "qualified": False})
    lead = LeadFactory()
    inbox_take_over(lead=lead, user=operator)
    inbound = Message.objects.create(
        conversation=ConversationFactory(lead=lead), role=MessageRole.LEAD, text="hi"
    )

    assert drafts.shadow_draft_write(message_id=inbound.pk) is None
    assert fake_openai.calls == 0
    settings.AGENT_LEAD_DAILY_TOKEN_CAP = 0
    assert drafts.shadow_draft_write(message_id=inbound.pk) is not None
    assert fake_openai.calls == 1
