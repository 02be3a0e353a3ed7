"""The selector reads the same timeline the rule is proven on: 60 seeded random leads written to the
database (lead messages, delivered and undelivered agent replies, a person's messages, handoffs, pauses,
takeovers, opt-out words, earlier follow-ups), and each LeadTimeline `lead_timelines` builds compared with
one computed from the script itself; then the beat's due list is the rule applied to those timelines."""

import random
from datetime import timedelta

import pytest
from django.utils import timezone

from agent.followups import selectors, services
from agent.followups.models import FollowUp, FollowUpStatus
from agent.followups.rules import FollowUpConfig, followup_step_due
from leads.models import Lead, Message, MessageRole
from tests.factories import ConversationFactory, LeadFactory, UserFactory

pytestmark = pytest.mark.django_db

LEADS = 60


def _message(conversation, role, when, text="hello", status=None, version=None):
    defaults = {"lead": "received", "agent": "sent", "operator": "sent"}
    message = Message.objects.create(
        conversation=conversation,
        role=role,
        text=text,
        delivery_status=status or defaults[role],
        prompt_version=version if role == MessageRole.AGENT else None,
    )
    Message.objects.filter(pk=message.pk).update(created_at=when)
    message.created_at = when
    return message


def test_the_selector_builds_the_timeline_the_rule_is_proven_on(active_version):
    rng = random.Random(7)
    now = timezone.now()
    person = UserFactory()
    expected = {}
    for _ in range(LEADS):
        start = now - timedelta(hours=rng.uniform(5, 30))
        lead = LeadFactory(last_message_at=None, timezone=rng.choice(["", "UTC+02", "Asia/Tokyo"]))
        conversation = ConversationFactory(lead=lead)
        at = start
        last_lead = None
        anchor = None
        person_after = False
        opted = False
        agent_today = 0
        for _turn in range(rng.randint(1, 4)):
            text = (
                rng.choice(["How much?", "ok", "STOP", "tell me more", "para"])
                if rng.random() < 0.3
                else "hi"
            )
            last_lead = _message(conversation, MessageRole.LEAD, at, text=text)
            opted = opted or text in ("STOP", "para")
            anchor, person_after = None, False
            at += timedelta(seconds=rng.randint(3, 30))
            roll = rng.random()
            if roll < 0.75:
                reply = _message(conversation, MessageRole.AGENT, at, version=active_version)
                anchor = reply
                agent_today += reply.created_at >= now - timedelta(hours=24)
            elif roll < 0.85:  # a reply that never went out (the window closed): not the agent's last word
                reply = _message(
                    conversation, MessageRole.AGENT, at, status="undeliverable", version=active_version
                )
                agent_today += reply.created_at >= now - timedelta(hours=24)
            elif roll < 0.95:
                _message(conversation, MessageRole.OPERATOR, at)
                person_after = True
            at += timedelta(minutes=rng.randint(5, 400))
            if at > now - timedelta(minutes=1):
                break
        followups = ()
        if anchor is not None and rng.random() < 0.3:
            sent = anchor.created_at + timedelta(hours=1)
            sent_message = _message(conversation, MessageRole.AGENT, sent, version=active_version)
            FollowUp.objects.create(
                lead=lead,
                conversation=conversation,
                after_message=anchor,
                step=1,
                status=FollowUpStatus.SENT,
                sent_at=sent,
                message=sent_message,
            )
            followups = (sent,)
            agent_today += sent >= now - timedelta(hours=24)
        flags = {}
        if rng.random() < 0.1:
            flags["bot_paused"] = True
        if rng.random() < 0.1:
            flags["needs_human"] = True
        if rng.random() < 0.1:
            flags.update(taken_over_by=person, taken_over_at=now)
        Lead.objects.filter(pk=lead.pk).update(last_message_at=last_lead.created_at, **flags)
        expected[lead.pk] = {
            "last_lead_at": last_lead.created_at,
            "anchor_at": anchor.created_at if anchor else None,
            "person_after": person_after,
            "followups": followups,
            "paused": flags.get("bot_paused", False),
            "handed_off": flags.get("needs_human", False),
            "taken_over": "taken_over_by" in flags,
            "opted_out": opted,
            "agent_messages_today": agent_today,
        }

    leads = list(Lead.objects.filter(pk__in=expected))
    facts = selectors.lead_timelines(leads=leads, now=now, opt_out=services._opt_out)
    assert len(facts) == LEADS
    for fact in facts:
        got = {key: getattr(fact.timeline, key) for key in expected[fact.lead.pk]}
        assert got == expected[fact.lead.pk], fact.lead.pk

    # The beat's due list is exactly the rule over these timelines, read through the indexed candidates.
    config = FollowUpConfig.from_settings()
    by_rule = {
        f.lead.pk
        for f in facts
        if isinstance(followup_step_due(timeline=f.timeline, now=now, config=config), int)
    }
    assert set(services.followup_due_lead_ids(now=now)) == by_rule
    assert by_rule  # not vacuous
    assert Lead.objects.filter(followups_opted_out_at__isnull=False).count() == sum(
        1
        for e in expected.values()
        if e["opted_out"]
        and not e["paused"]
        and not e["handed_off"]
        and not e["taken_over"]
        and e["last_lead_at"] > now - timedelta(hours=24) + config.window_margin
        and e["last_lead_at"] <= now - config.delays[0]
    )
