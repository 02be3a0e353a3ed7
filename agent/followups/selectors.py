"""Reads for follow-ups: the leads that may be due (one indexed range on leads.last_message_at, never a scan
of every lead), their timelines, and the comeback figures per version."""

from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.db.models import Count, Exists, OuterRef, Q

from agent.followups.models import FollowUp, FollowUpStatus
from agent.followups.rules import WINDOW, FollowUpConfig, LeadTimeline
from leads.models import DeliveryStatus, Lead, Message, MessageRole
from prompts.selectors import wilson_interval

# An agent reply counts as the lead's last word from the agent once it reached ManyChat.
DELIVERED = (DeliveryStatus.RETURNED, DeliveryStatus.SENT)


def followup_candidate_leads(*, now: datetime, config: FollowUpConfig, limit: int) -> list[Lead]:
    """Leads whose last message falls inside the window and before the first delay, with the bot on.

    A range on `lead_last_message_idx` (last_message_at is the lead's own last message): only the leads
    active in the last day are read, however many leads there are.
    """
    if not config.delays:
        return []
    return list(
        Lead.objects.filter(
            last_message_at__gt=now - WINDOW + config.window_margin,
            last_message_at__lte=now - config.delays[0],
            bot_paused=False,
            needs_human=False,
            taken_over_by__isnull=True,
            followups_opted_out_at__isnull=True,
        )
        .only(
            "id",
            "manychat_subscriber_id",
            "channel",
            "last_message_at",
            "timezone",
            "bot_paused",
            "needs_human",
            "taken_over_by_id",
            "followups_opted_out_at",
        )
        .order_by("last_message_at")[:limit]
    )


@dataclass(frozen=True)
class LeadFacts:
    lead: Lead
    timeline: LeadTimeline
    anchor_id: int | None
    conversation_id: int | None
    opt_out_message_id: int | None  # a lead message that opted out, not recorded yet


def lead_timelines(
    *, leads: list[Lead], now: datetime, opt_out: Any, ignore_followup_id: int | None = None
) -> list[LeadFacts]:
    """Each lead's timeline from three queries (messages since the window opened, follow-ups, lead texts).

    `opt_out(text) -> bool` tells an opt-out message; `ignore_followup_id` leaves one claim out (the one
    being sent re-checks the rule without counting itself).
    """
    if not leads:
        return []
    ids = [lead.pk for lead in leads]
    since = min([lead.last_message_at for lead in leads if lead.last_message_at] + [now - WINDOW])
    rows = (
        Message.objects.filter(conversation__lead_id__in=ids, created_at__gte=since)
        .values("id", "conversation_id", "conversation__lead_id", "role", "created_at", "delivery_status")
        .order_by("created_at", "id")
    )
    # Every claimed step counts, sent or not: a step that failed or was held back is not tried again (the
    # next step comes at its own time), so the beat never re-queues a lead for a step it cannot claim.
    followups = FollowUp.objects.filter(lead_id__in=ids, created_at__gte=since - timedelta(hours=1))
    if ignore_followup_id is not None:
        followups = followups.exclude(pk=ignore_followup_id)
    by_anchor: dict[int, list[datetime]] = defaultdict(list)
    followup_messages: set[int] = set()
    for followup in followups.values("after_message_id", "message_id", "sent_at", "created_at"):
        by_anchor[followup["after_message_id"]].append(followup["sent_at"] or followup["created_at"])
        if followup["message_id"]:
            followup_messages.add(followup["message_id"])
    messages: dict[int, list[dict[str, Any]]] = defaultdict(list)
    for row in rows:
        messages[row["conversation__lead_id"]].append(dict(row))
    # Opt-outs: every message the lead ever wrote (a "stop" a week ago still holds).
    opted: dict[int, int] = {}
    lead_texts = Message.objects.filter(conversation__lead_id__in=ids, role=MessageRole.LEAD).values_list(
        "conversation__lead_id", "id", "text"
    )
    for lead_id, message_id, text in lead_texts.order_by("id"):
        if lead_id not in opted and opt_out(text):
            opted[lead_id] = message_id

    out = []
    for lead in leads:
        rows_of = messages.get(lead.pk, [])
        lead_rows = [r for r in rows_of if r["role"] == MessageRole.LEAD]
        last_lead = lead_rows[-1] if lead_rows else None
        known = [at for at in (last_lead["created_at"] if last_lead else None, lead.last_message_at) if at]
        last_lead_at = max(known) if known else None
        after = [
            r
            for r in rows_of
            if last_lead_at is not None and r["created_at"] >= last_lead_at and r["role"] != MessageRole.LEAD
        ]
        replies = [
            r
            for r in after
            if r["role"] == MessageRole.AGENT
            and r["delivery_status"] in DELIVERED
            and r["id"] not in followup_messages
        ]
        anchor = replies[-1] if replies else None
        day_ago = now - timedelta(hours=24)
        timeline = LeadTimeline(
            last_lead_at=last_lead_at,
            anchor_at=anchor["created_at"] if anchor else None,
            person_after=any(r["role"] == MessageRole.OPERATOR for r in after),
            followups=tuple(sorted(by_anchor.get(anchor["id"], []))) if anchor else (),
            paused=lead.bot_paused,
            handed_off=lead.needs_human,
            taken_over=lead.taken_over_by_id is not None,
            opted_out=lead.followups_opted_out_at is not None or lead.pk in opted,
            agent_messages_today=sum(
                1 for r in rows_of if r["role"] == MessageRole.AGENT and r["created_at"] >= day_ago
            ),
            timezone=lead.timezone,
        )
        out.append(
            LeadFacts(
                lead=lead,
                timeline=timeline,
                anchor_id=anchor["id"] if anchor else None,
                conversation_id=anchor["conversation_id"] if anchor else None,
                opt_out_message_id=opted.get(lead.pk) if lead.followups_opted_out_at is None else None,
            )
        )
    return out


def followups_sent_since(*, since: datetime) -> int:
    return FollowUp.objects.filter(status=FollowUpStatus.SENT, sent_at__gte=since).count()


@dataclass(frozen=True)
class ComebackRow:
    prompt_version_id: int | None
    version: int | None
    silences: int  # silent leads that got at least one follow-up
    came_back: int  # of them, leads that wrote again after the first follow-up
    followups: int

    @property
    def rate(self) -> float | None:
        return self.came_back / self.silences if self.silences else None

    @property
    def interval(self) -> tuple[float, float] | None:
        return wilson_interval(successes=self.came_back, trials=self.silences)


def followup_comebacks_by_version(*, since: datetime | None = None) -> list[ComebackRow]:
    """Per version: silent leads followed up (their first follow-up, credited to the version that wrote it)
    and how many wrote again afterwards, with the 95% Wilson interval. One grouped query."""
    # The first follow-up that went out to each silence (step 1, or step 2 when step 1 was held back).
    earlier = FollowUp.objects.filter(
        after_message_id=OuterRef("after_message_id"), status=FollowUpStatus.SENT, step__lt=OuterRef("step")
    )
    first = FollowUp.objects.filter(status=FollowUpStatus.SENT).exclude(Exists(earlier))
    if since is not None:
        first = first.filter(sent_at__gte=since)
    replied = Message.objects.filter(
        conversation__lead_id=OuterRef("lead_id"), role=MessageRole.LEAD, created_at__gt=OuterRef("sent_at")
    )
    rows = (
        first.annotate(back=Exists(replied))
        .values("prompt_version_id", "prompt_version__version")
        .annotate(silences=Count("id"), came_back=Count("id", filter=Q(back=True)))
        .order_by("-prompt_version__version")
    )
    sent = dict(
        FollowUp.objects.filter(status=FollowUpStatus.SENT, **({"sent_at__gte": since} if since else {}))
        .values("prompt_version_id")
        .annotate(n=Count("id"))
        .values_list("prompt_version_id", "n")
    )
    return [
        ComebackRow(
            prompt_version_id=row["prompt_version_id"],
            version=row["prompt_version__version"],
            silences=row["silences"],
            came_back=row["came_back"],
            followups=sent.get(row["prompt_version_id"], 0),
        )
        for row in rows
    ]
