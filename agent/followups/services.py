"""Follow-ups to silent leads: find who is due, claim the step, let the active version write it, send it.

    beat (followups.send_due) → followup_due_lead_ids → followups.send_one(lead) → followup_send:
        re-check the rule → claim (unique row per lead, message and step) → turn_decide with the follow-up
        instruction (the normal model call, guard and grounding) → re-check → store (stamped with the
        version) → sendContent (agent.turn.reply_deliver) → mark sent

Every rule (window, quiet hours, reply, handoff, pause, takeover, opt-out, caps) is in rules.py.
"""

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from agent import budget, turn
from agent.followups import selectors
from agent.followups.models import FollowUp, FollowUpStatus
from agent.followups.rules import FollowUpConfig, Skip, followup_step_due, is_opt_out
from leads import selectors as lead_selectors
from leads import services as lead_services
from leads.models import DeliveryStatus, Lead

logger = logging.getLogger(__name__)


def _opt_out(text: str) -> bool:
    return is_opt_out(text=text, words=list(settings.FOLLOWUP_OPT_OUT_WORDS))


def _draft_mode(lead: Lead) -> bool:
    """Draft mode (a person sends every agent message, agent/inbox/drafts.py): no follow-up goes out unasked.
    The team's AGENT_DRAFT_MODE, unless the lead has its own setting."""
    own = getattr(lead, "draft_mode", None)
    return bool(getattr(settings, "AGENT_DRAFT_MODE", False)) if own is None else bool(own)


def _record_opt_outs(facts: list[selectors.LeadFacts], now: datetime) -> None:
    for fact in facts:
        if fact.opt_out_message_id is not None:
            lead_services.lead_record_followup_opt_out(
                lead_id=fact.lead.pk, message_id=fact.opt_out_message_id, at=now
            )


def followup_due_lead_ids(*, now: datetime | None = None) -> list[int]:
    """The leads due a follow-up now (opt-outs found on the way are recorded)."""
    now = now or timezone.now()
    config = FollowUpConfig.from_settings()
    leads = selectors.followup_candidate_leads(now=now, config=config, limit=settings.FOLLOWUP_BATCH)
    facts = selectors.lead_timelines(leads=leads, now=now, opt_out=_opt_out)
    _record_opt_outs(facts, now)
    return [
        fact.lead.pk
        for fact in facts
        if isinstance(followup_step_due(timeline=fact.timeline, now=now, config=config), int)
    ]


@dataclass(frozen=True)
class FollowUpOutcome:
    state: str  # "sent", a Skip value, "claimed_elsewhere", "failed", "undeliverable"
    followup_id: int | None = None


def _facts_for(*, lead_id: int, now: datetime, ignore: int | None = None) -> selectors.LeadFacts | None:
    lead = Lead.objects.filter(pk=lead_id).first()
    if lead is None:
        return None
    facts = selectors.lead_timelines(leads=[lead], now=now, opt_out=_opt_out, ignore_followup_id=ignore)
    _record_opt_outs(facts, now)
    return facts[0]


def _close(followup: FollowUp, status: FollowUpStatus, reason: str) -> FollowUpOutcome:
    FollowUp.objects.filter(pk=followup.pk).update(status=status, reason=reason[:300])
    return FollowUpOutcome(
        state=reason.split(":")[0] if status == FollowUpStatus.SKIPPED else status.value,
        followup_id=followup.pk,
    )


def followup_send(*, lead_id: int, now: datetime | None = None) -> FollowUpOutcome:
    """Send this lead's due follow-up step, once. Safe to run twice or on two workers at once."""
    now = now or timezone.now()
    config = FollowUpConfig.from_settings()
    facts = _facts_for(lead_id=lead_id, now=now)
    if facts is None:
        return FollowUpOutcome(state="missing")
    step = followup_step_due(timeline=facts.timeline, now=now, config=config)
    if isinstance(step, Skip):
        return FollowUpOutcome(state=step.value)
    if _draft_mode(facts.lead):
        return FollowUpOutcome(state="draft_mode")
    if (
        settings.FOLLOWUP_DAILY_CAP
        and selectors.followups_sent_since(since=now - timedelta(hours=24)) >= settings.FOLLOWUP_DAILY_CAP
    ):
        return FollowUpOutcome(state="team_daily_cap")
    assert facts.anchor_id is not None and facts.conversation_id is not None
    try:
        with transaction.atomic():
            followup = FollowUp.objects.create(
                lead_id=lead_id,
                conversation_id=facts.conversation_id,
                after_message_id=facts.anchor_id,
                step=step,
            )
    except IntegrityError:
        return FollowUpOutcome(state="claimed_elsewhere")

    lead = facts.lead
    history = lead_selectors.message_history(
        conversation_id=facts.conversation_id, limit=settings.AGENT_MAX_HISTORY_MESSAGES
    )
    try:  # the agent's daily caps (agent/budget.py), as for a turn: over one, the step is skipped, never sent
        reservation = budget.budget_reserve(purpose=budget.Purpose.AGENT, lead_id=lead_id)
    except budget.BudgetExceeded as refused:
        return _close(followup, FollowUpStatus.SKIPPED, f"budget_cap: {refused.message}")
    decision = turn.turn_decide(lead=lead, history=history, text=settings.FOLLOWUP_INSTRUCTION, deadline=None)
    turn.turn_budget_settle(reservation=reservation, decision=decision)
    if isinstance(decision, turn.TurnFailure):
        return _close(followup, FollowUpStatus.FAILED, f"failed: {decision.error}")
    FollowUp.objects.filter(pk=followup.pk).update(prompt_version=decision.version)
    answer = decision.reply
    if decision.note or answer.handoff or not answer.reply.strip():
        # A follow-up only ever goes out as the version wrote it; a refused fact or a wish for a person
        # is left for the next message from the lead, not pushed unasked.
        why = decision.note or ("the version asked for a person" if answer.handoff else "empty reply")
        return _close(followup, FollowUpStatus.SKIPPED, f"refused: {why}")

    # The model took a while: the lead may have written, or a person stepped in, meanwhile.
    later = timezone.now()
    fresh = _facts_for(lead_id=lead_id, now=max(later, now), ignore=followup.pk)
    again = (
        followup_step_due(timeline=fresh.timeline, now=max(later, now), config=config)
        if fresh
        else Skip.NOT_SILENT
    )
    if again != step:
        reason = again.value if isinstance(again, Skip) else "not_due"
        return _close(followup, FollowUpStatus.SKIPPED, f"{reason}: changed while the follow-up was written")

    result = decision.result
    with transaction.atomic():
        message = lead_services.message_record_followup(
            conversation_id=facts.conversation_id,
            text=answer.reply,
            prompt_version_id=decision.version.pk,
            model=result.model,
            prompt_tokens=result.prompt_tokens,
            completion_tokens=result.completion_tokens,
            latency_ms=result.latency_ms,
        )
        FollowUp.objects.filter(pk=followup.pk).update(message=message)
    try:
        status = turn.reply_deliver(reply=message, lead=lead)
    except turn.DeliveryRetryable as exc:
        # Not retried later: by then the window or the lead's hours may have moved on.
        lead_services.message_set_delivery(
            message_id=message.pk, status=DeliveryStatus.UNDELIVERABLE, error=str(exc)[:500]
        )
        return _close(followup, FollowUpStatus.FAILED, f"failed: {exc}")
    if status != DeliveryStatus.SENT:
        return _close(followup, FollowUpStatus.FAILED, f"undeliverable: {status}")
    sent_at = timezone.now()
    with transaction.atomic():
        FollowUp.objects.filter(pk=followup.pk).update(status=FollowUpStatus.SENT, sent_at=sent_at, reason="")
        lead_services.activity_record(
            verb="agent.followup_sent",
            lead_id=lead_id,
            data={"step": step, "message_id": message.pk, "prompt_version_id": decision.version.pk},
        )
    return FollowUpOutcome(state="sent", followup_id=followup.pk)
