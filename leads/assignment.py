"""Lead-level facts of the inbox: who handles a lead, since when it waits, notes, operator messages.

The inbox itself (agent/inbox) orchestrates these with ManyChat and training; this module knows no other app.
"""

from datetime import datetime
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import IntegrityError, models, transaction
from django.utils import timezone

from leads.models import Activity, Conversation, DeliveryStatus, Lead, Message, MessageRole, Note
from leads.services import activity_record, conversation_open_or_create

MAX_OPERATOR_TEXT = 4000
MAX_NOTE_TEXT = 4000


def _clean_text(*, text: str, field: str, limit: int) -> str:
    text = (text or "").strip()
    if not text:
        raise ValidationError({field: "Write something first."})
    if len(text) > limit:
        raise ValidationError({field: f"At most {limit} characters ({len(text)} given)."})
    return text


@transaction.atomic
def lead_assign(*, lead: Lead, assignee: Any | None, actor: Any) -> Lead:
    """Give a lead to a person (or to nobody). The assignee is who the "mine" queue shows it to."""
    locked = Lead.objects.select_for_update().only("id", "assignee_id").get(pk=lead.pk)
    new_id = assignee.pk if assignee is not None else None
    if locked.assignee_id != new_id:
        Lead.objects.filter(pk=lead.pk).update(assignee_id=new_id, updated_at=timezone.now())
        activity_record(
            verb="lead.assigned",
            lead=lead,
            actor=actor,
            data={"from": locked.assignee_id, "to": new_id},
        )
    lead.refresh_from_db(fields=["assignee", "updated_at"])
    return lead


@transaction.atomic
def lead_take_over(*, lead: Lead, user: Any) -> bool:
    """A person handles the lead from now on: the bot is silenced and the lead is theirs if unassigned.

    Returns False when this person already held it (nothing changed).
    """
    now = timezone.now()
    locked = Lead.objects.select_for_update().get(pk=lead.pk)
    if locked.taken_over_by_id == user.pk and locked.bot_paused:
        return False
    changes: dict[str, Any] = {
        "bot_paused": True,
        "taken_over_by_id": user.pk,
        "taken_over_at": now,
        "updated_at": now,
    }
    if locked.assignee_id is None:
        changes["assignee_id"] = user.pk
    Lead.objects.filter(pk=lead.pk).update(**changes)
    activity_record(verb="lead.taken_over", lead=lead, actor=user, data={"from": locked.taken_over_by_id})
    lead.refresh_from_db()
    return True


@transaction.atomic
def lead_hand_back(*, lead: Lead, actor: Any) -> bool:
    """Give the lead back to the bot: clears the takeover, a pause, a handoff and the waiting time.

    Returns True when anything changed (the caller then removes the handoff tag in ManyChat).
    """
    updated = (
        Lead.objects.filter(pk=lead.pk)
        .filter(
            models.Q(bot_paused=True)
            | models.Q(needs_human=True)
            | models.Q(taken_over_at__isnull=False)
            | models.Q(waiting_since__isnull=False)
        )
        .update(
            bot_paused=False,
            needs_human=False,
            handoff_reason="",
            waiting_since=None,
            taken_over_by=None,
            taken_over_at=None,
            updated_at=timezone.now(),
        )
    )
    if updated:
        activity_record(verb="lead.handed_back", lead=lead, actor=actor)
    lead.refresh_from_db()
    return bool(updated)


def lead_mark_waiting(*, lead_id: int, at: datetime) -> bool:
    """The lead waits for a person from `at`, unless it already waits (the earliest time is kept)."""
    return bool(Lead.objects.filter(pk=lead_id, waiting_since__isnull=True).update(waiting_since=at))


def leads_idle_since(*, before: datetime, limit: int = 200) -> list[int]:
    """Taken-over leads whose person has not written since `before` (for the optional idle hand-back)."""
    recent = Message.objects.filter(
        conversation__lead_id=models.OuterRef("pk"), role=MessageRole.OPERATOR, created_at__gte=before
    )
    return list(
        Lead.objects.filter(taken_over_at__lt=before)
        .filter(~models.Exists(recent))
        .order_by("taken_over_at", "id")
        .values_list("id", flat=True)[:limit]
    )


@transaction.atomic
def note_add(*, lead: Lead, author: Any, text: str) -> Note:
    text = _clean_text(text=text, field="text", limit=MAX_NOTE_TEXT)
    note = Note.objects.create(lead=lead, author=author, text=text)
    activity_record(verb="lead.note_added", lead=lead, actor=author, data={"note_id": note.pk})
    return note


@transaction.atomic
def message_record_operator(*, lead: Lead, text: str, sent_by: Any, take_over: bool = True) -> Message:
    """Store a person's message to the lead (pending delivery) in its open conversation.

    A person who writes handles the lead: the bot is silenced (a takeover) and the lead stops waiting.
    A person who sends an agent draft (draft mode, `take_over=False`) leaves the bot writing drafts.
    """
    text = _clean_text(text=text, field="text", limit=MAX_OPERATOR_TEXT)
    now = timezone.now()
    conversation: Conversation = conversation_open_or_create(lead=lead, channel=lead.channel, at=now)
    message = Message.objects.create(
        conversation=conversation,
        role=MessageRole.OPERATOR,
        text=text,
        delivery_status=DeliveryStatus.PENDING,
        sent_by=sent_by,
    )
    if take_over:
        lead_take_over(lead=lead, user=sent_by)
    Lead.objects.filter(pk=lead.pk).update(waiting_since=None, last_message_at=now)
    activity_record(verb="lead.operator_replied", lead=lead, actor=sent_by, data={"message_id": message.pk})
    lead.waiting_since = None
    return message


def leads_waiting_unalerted(*, before: datetime, verb: str, limit: int = 100) -> list[Lead]:
    """Leads waiting since before `before` with no `verb` activity since they started waiting."""
    alerted = Activity.objects.filter(
        lead_id=models.OuterRef("pk"), verb=verb, created_at__gte=models.OuterRef("waiting_since")
    )
    return list(
        Lead.objects.select_related("assignee")
        .filter(waiting_since__lte=before)
        .filter(~models.Exists(alerted))
        .order_by("waiting_since", "id")[:limit]
    )


def message_supersede_if_taken_over(*, message_id: int, lead_id: int) -> bool:
    """Keep a pending agent reply that a person's takeover made moot, marked so it is never sent.

    One statement: the takeover is read fresh (it may have happened while the model was writing).
    """
    taken_over = Lead.objects.filter(pk=lead_id, taken_over_at__isnull=False)
    return bool(
        Message.objects.filter(pk=message_id, role=MessageRole.AGENT, delivery_status=DeliveryStatus.PENDING)
        .filter(models.Exists(taken_over))
        .update(
            delivery_status=DeliveryStatus.SUPERSEDED,
            error="A person took the lead over before this reply was sent.",
        )
    )


# --- Message bursts (agent.turn.turn_burst_wait): the window lives in the message rows, not in a process.


def message_newer_inbound_exists(*, message_id: int, conversation_id: int) -> bool:
    """A later message from the lead arrived in the same conversation (its turn answers this one too)."""
    return Message.objects.filter(
        conversation_id=conversation_id, role=MessageRole.LEAD, pk__gt=message_id
    ).exists()


def message_absorb_into_burst(*, message_id: int) -> bool:
    """Mark a lead's message as answered by the turn of a later message of the same burst."""
    return bool(
        Message.objects.filter(
            pk=message_id, role=MessageRole.LEAD, delivery_status=DeliveryStatus.RECEIVED
        ).update(
            delivery_status=DeliveryStatus.ANSWERED,
            error="Answered together with the lead's next message (one burst).",
        )
    )


# --- Draft mode and shadow mode (agent/inbox/drafts.py) ----------------------------------------------------


def lead_draft_mode(*, lead: Lead) -> bool:
    """Whether the agent's replies to this lead wait as drafts: the lead's own setting, else the team's."""
    return settings.AGENT_DRAFT_MODE if lead.draft_mode is None else bool(lead.draft_mode)


@transaction.atomic
def lead_set_draft_mode(*, lead: Lead, draft_mode: bool | None, actor: Any) -> Lead:
    """Set the lead's own draft mode (None: follow the team's default, AGENT_DRAFT_MODE)."""
    if lead.draft_mode is not draft_mode:
        Lead.objects.filter(pk=lead.pk).update(draft_mode=draft_mode, updated_at=timezone.now())
        activity_record(verb="lead.draft_mode_set", lead=lead, actor=actor, data={"draft_mode": draft_mode})
        lead.draft_mode = draft_mode
    return lead


def message_record_shadow(
    *,
    inbound: Message,
    text: str,
    prompt_version_id: int,
    model: str = "",
    prompt_tokens: int | None = None,
    completion_tokens: int | None = None,
    latency_ms: int | None = None,
) -> Message | None:
    """Store what the agent would have said to a lead a person handles; never sent, the lead's message
    keeps its state. The one-agent-reply-per-message index makes a repeated task a no-op (None)."""
    try:
        with transaction.atomic():
            return Message.objects.create(
                conversation_id=inbound.conversation_id,
                role=MessageRole.AGENT,
                text=text,
                in_reply_to=inbound,
                prompt_version_id=prompt_version_id,
                delivery_status=DeliveryStatus.SHADOW,
                model=model[:100],
                prompt_tokens=prompt_tokens,
                completion_tokens=completion_tokens,
                latency_ms=latency_ms,
            )
    except IntegrityError:
        return None


def draft_lock(*, draft_id: int) -> Message | None:
    """An agent message, row-locked for the rest of the transaction (two people acting on one draft wait
    in turn, and the second one reads the state the first one left)."""
    return (
        Message.objects.select_for_update(of=("self",))
        .select_related("conversation__lead", "in_reply_to")
        .filter(pk=draft_id, role=MessageRole.AGENT)
        .first()
    )


def draft_close(*, draft_id: int, status: str, error: str = "") -> bool:
    """Move a waiting draft on (to pending, edited or discarded) in one conditional UPDATE: exactly one
    caller wins, whatever the others read before."""
    return bool(
        Message.objects.filter(
            pk=draft_id, role=MessageRole.AGENT, delivery_status=DeliveryStatus.DRAFT
        ).update(delivery_status=status, error=error[:2000])
    )
