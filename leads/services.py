from collections.abc import Iterable, Sequence
from contextlib import nullcontext
from dataclasses import dataclass
from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.contenttypes.models import ContentType
from django.db import connection, models, transaction
from django.utils import timezone

from config.errors import Conflict, NotFound
from leads.models import Activity, Channel, Lead, LeadStatus, Notification

User = get_user_model()


def activity_record(
    *,
    verb: str,
    lead: Lead | None = None,
    lead_id: int | None = None,
    actor: Any = None,
    data: dict[str, Any] | None = None,
) -> Activity:
    return Activity.objects.create(
        verb=verb,
        lead_id=lead.pk if lead is not None else lead_id,
        actor=actor if getattr(actor, "is_authenticated", False) else None,
        data=data or {},
    )


def notification_notify(
    *,
    recipients: Iterable[Any],
    verb: str,
    message: str,
    target: models.Model | None = None,
    url: str = "",
) -> list[Notification]:
    content_type = ContentType.objects.get_for_model(target) if target is not None else None
    rows = [
        Notification(
            recipient=recipient,
            verb=verb,
            message=message[:500],
            target_content_type=content_type,
            target_object_id=str(target.pk) if target is not None else "",
            url=url,
        )
        for recipient in {r.pk: r for r in recipients}.values()
    ]
    return Notification.objects.bulk_create(rows)


def notification_mark_read(*, notification: Notification) -> Notification:
    if notification.read_at is None:
        notification.read_at = timezone.now()
        notification.save(update_fields=["read_at"])
    return notification


def notification_group_mark_read(*, notification: Notification) -> int:
    """Mark this notification and the recipient's others about the same target read."""
    from leads.selectors import notifications_in_group

    return (
        notifications_in_group(notification=notification)
        .filter(read_at__isnull=True)
        .update(read_at=timezone.now())
    )


def notifications_mark_all_read(*, user: Any) -> int:
    return Notification.objects.filter(recipient=user, read_at__isnull=True).update(read_at=timezone.now())


@transaction.atomic
def lead_set_status(
    *,
    lead: Lead,
    status: str,
    actor: Any = None,
    reason: str = "",
    source: str = "",
    data: dict | None = None,
) -> Lead:
    """Move a lead to a new status, recorded as a `lead.status_changed` activity (the qualification fact
    that leads.selectors.lead_qualifications_since reads) with its source: the agent, a person (an actor)
    or an integration (a booking webhook); `data` adds ids such as the booking's."""
    if status not in LeadStatus.values:
        raise ValueError(f"Unknown lead status {status!r}")
    source = source or ("person" if actor is not None else "agent")
    lead = Lead.objects.select_for_update().get(pk=lead.pk)
    previous = lead.status
    if previous == status:
        return lead
    lead.status = status
    lead.save(update_fields=["status", "updated_at"])
    activity_record(
        verb="lead.status_changed",
        lead=lead,
        actor=actor,
        data={"from": previous, "to": status, "reason": reason, "source": source, **(data or {})},
    )
    return lead


# A person's status change can be taken back for this long (the lead page's toast shows Undo for 10 s; the
# rest is room for a slow network).
STATUS_UNDO_SECONDS = 20


def lead_status_change_undoable(*, lead: Lead, activity_id: int, actor: Any) -> Activity:
    """The actor's own latest status change of this lead, still within the undo window and still in force."""
    change = (
        Activity.objects.filter(pk=activity_id, lead_id=lead.pk, verb="lead.status_changed")
        .exclude(data__has_key="undo_of")
        .first()
    )
    if change is None or change.actor_id != getattr(actor, "pk", None):
        raise NotFound("There is no status change of yours to undo.")
    if (timezone.now() - change.created_at).total_seconds() > STATUS_UNDO_SECONDS:
        raise Conflict("Too late to undo: change the status again instead.")
    newer = Activity.objects.filter(lead_id=lead.pk, verb="lead.status_changed", pk__gt=change.pk).exists()
    if newer or lead.status != change.data.get("to"):
        raise Conflict("The status has changed since; nothing was undone.")
    if change.data.get("from") not in LeadStatus.values:
        raise Conflict("The previous status is not known; nothing was undone.")
    return change


@transaction.atomic
def lead_status_undo(*, lead: Lead, activity_id: int, actor: Any) -> Lead:
    """Take back the actor's status change from a few seconds ago: the lead returns to its previous status,
    recorded as a status change that names the one it undoes (leads.selectors skips undone qualifications)."""
    lead = Lead.objects.select_for_update().get(pk=lead.pk)
    change = lead_status_change_undoable(lead=lead, activity_id=activity_id, actor=actor)
    return lead_set_status(
        lead=lead,
        status=change.data["from"],
        actor=actor,
        reason="Undone",
        data={"undo_of": change.pk},
    )


@transaction.atomic
def lead_pause_bot(*, lead: Lead, actor: Any = None, reason: str = "") -> Lead:
    updated = Lead.objects.filter(pk=lead.pk, bot_paused=False).update(
        bot_paused=True, updated_at=timezone.now()
    )
    if updated:
        activity_record(verb="lead.bot_paused", lead=lead, actor=actor, data={"reason": reason})
    lead.refresh_from_db(fields=["bot_paused", "updated_at"])
    return lead


@transaction.atomic
def lead_resume_bot(*, lead: Lead, actor: Any = None) -> Lead:
    """Give the lead back to the bot: clears both a manual pause and a model handoff."""
    updated = (
        Lead.objects.filter(pk=lead.pk)
        .filter(models.Q(bot_paused=True) | models.Q(needs_human=True))
        .update(bot_paused=False, needs_human=False, handoff_reason="", updated_at=timezone.now())
    )
    if updated:
        activity_record(verb="lead.bot_resumed", lead=lead, actor=actor)
        # Everyone's "this lead needs a person" notifications are settled once the bot has it back.
        Notification.objects.filter(
            target_content_type=ContentType.objects.get_for_model(Lead),
            target_object_id=str(lead.pk),
            read_at__isnull=True,
        ).update(read_at=timezone.now())
    lead.refresh_from_db(fields=["bot_paused", "needs_human", "handoff_reason", "updated_at"])
    return lead


# --- Ingestion from the ManyChat webhook (called by agent.turn) -----------------------------------------


def lead_upsert_from_manychat(
    *,
    subscriber_id: str,
    channel: str,
    profile: dict[str, str],
    at: Any,
    existing: Lead | None = None,
    custom_fields: dict[str, Any] | None = None,
    defer_touch: bool = False,
) -> Lead:
    """Find or create the lead for a subscriber, refresh what ManyChat told us, stamp last_message_at.

    Race-safe: two first messages at once both end up with the one row (get_or_create retries the read
    after losing the insert race on the unique subscriber id). Empty incoming values never erase data.
    ManyChat custom fields with a value are kept in qualification_data["manychat_fields"].

    With defer_touch, an existing lead whose only change is the stamp is not written here: the caller stamps
    it with the message's insert (message_record_inbound's `touch`, one statement on PostgreSQL).
    """
    fields = {k: v for k, v in (custom_fields or {}).items() if v not in (None, "")}
    lead = existing
    if lead is None:
        defaults: dict[str, Any] = {"channel": channel, "last_message_at": at}
        defaults.update({k: v for k, v in profile.items() if v})
        if fields:
            defaults["qualification_data"] = {"manychat_fields": fields}
        lead, created = Lead.objects.get_or_create(manychat_subscriber_id=subscriber_id, defaults=defaults)
        if created:
            return lead
    changes: dict[str, Any] = {"last_message_at": at, "updated_at": timezone.now()}
    for name, value in profile.items():
        if value and getattr(lead, name) != value:
            changes[name] = value
    if channel != Channel.OTHER and lead.channel != channel:
        changes["channel"] = channel
    known = (lead.qualification_data or {}).get("manychat_fields") or {}
    if not fields or {**known, **fields} == known:
        if defer_touch and set(changes) == {"last_message_at", "updated_at"}:
            lead.last_message_at = at
            return lead
        Lead.objects.filter(pk=lead.pk).update(**changes)
    else:
        # The row we were given may be stale: the agent merges the facts it learns into the same JSON
        # (lead_merge_qualification_data, under the same row lock), so merge into what is there now.
        with transaction.atomic():
            fresh = Lead.objects.select_for_update().only("id", "qualification_data").get(pk=lead.pk)
            data = dict(fresh.qualification_data or {})
            data["manychat_fields"] = {**(data.get("manychat_fields") or {}), **fields}
            changes["qualification_data"] = data
            Lead.objects.filter(pk=lead.pk).update(**changes)
    for name, value in changes.items():
        setattr(lead, name, value)
    return lead


def conversation_open_or_create(
    *, lead: Lead, channel: str, at: Any, existing: Any = None, defer_touch: bool = False
) -> Any:
    """The lead's open conversation (one at most, a partial unique index holds it), touched at `at`
    (with defer_touch, an existing one is stamped by the caller: message_record_inbound's `touch`)."""
    from django.db import IntegrityError

    from leads.models import Conversation, ConversationStatus

    conversation = existing
    if conversation is None:
        conversation = Conversation.objects.filter(lead=lead, status=ConversationStatus.OPEN).first()
        if conversation is None:
            try:
                with transaction.atomic():
                    return Conversation.objects.create(
                        lead=lead, channel=channel, status=ConversationStatus.OPEN, last_message_at=at
                    )
            except IntegrityError:
                conversation = Conversation.objects.get(lead=lead, status=ConversationStatus.OPEN)
    if not defer_touch:
        Conversation.objects.filter(pk=conversation.pk).update(last_message_at=at)
    conversation.last_message_at = at
    return conversation


@dataclass(frozen=True)
class Touch:
    """Stamp the lead and its conversation with the time of the message being stored."""

    lead_id: int
    conversation_id: int
    at: Any


def inbound_touch(*, touch: Touch) -> None:
    """The lead's and the conversation's last_message_at (the ORM way: two statements)."""
    from leads.models import Conversation

    Lead.objects.filter(pk=touch.lead_id).update(last_message_at=touch.at, updated_at=timezone.now())
    Conversation.objects.filter(pk=touch.conversation_id).update(last_message_at=touch.at)


def _insert_returning_pk(
    *, obj: Any, before: str = "", before_params: Sequence[Any] = (), returning: Sequence[str] = ()
) -> None:
    """INSERT `obj` as the ORM would, with `before` (a WITH clause of data-modifying CTEs) in front, in one
    statement (PostgreSQL): one round trip for the insert and the updates that go with it. The fields named
    in `returning` (computed by expressions in the insert) are read back onto `obj`."""
    from django.db import connection
    from django.db.models.sql import InsertQuery

    meta = obj._meta
    fields = [f for f in meta.local_concrete_fields if f is not meta.auto_field and not f.generated]
    query = InsertQuery(type(obj))
    query.insert_values(fields, [obj])
    compiler = query.get_compiler(connection=connection)
    read_back = [meta.get_field(name) for name in returning]
    compiler.returning_fields = [meta.pk, *read_back]
    ((sql, params),) = compiler.as_sql()
    with connection.cursor() as cursor:
        cursor.execute(f"{before} {sql}", [*before_params, *params])
        row = cursor.fetchone()
    obj.pk = row[0]
    for field, value in zip(read_back, row[1:], strict=True):
        setattr(obj, field.attname, value)
    obj._state.adding = False
    obj._state.db = connection.alias


def message_record_inbound(
    *,
    conversation: Any,
    text: str,
    dedupe_key: str,
    savepoint: bool = True,
    attachment_url: str = "",
    attachment_kind: str = "",
    touch: Touch | None = None,
) -> tuple[Any, bool]:
    """Store a lead's message once per dedupe key. Returns (message, created); a repeat returns the first.

    With savepoint=False a repeat raises IntegrityError and breaks the caller's transaction, which must
    then be retried whole (two round trips fewer on the hot path when repeats are rare). With `touch`, the
    lead and the conversation are stamped too: on PostgreSQL in the insert's own statement.
    """
    from django.db import IntegrityError

    from leads.models import Message, MessageRole

    fields = {"attachment_url": attachment_url, "attachment_kind": attachment_kind}  # a voice note, image...
    if not savepoint and touch is not None and connection.vendor == "postgresql":
        message = Message(
            conversation=conversation, role=MessageRole.LEAD, text=text, dedupe_key=dedupe_key, **fields
        )
        _insert_returning_pk(
            obj=message,
            before="WITH lead_touch AS (UPDATE leads SET last_message_at = %s, updated_at = %s "
            "WHERE id = %s), conversation_touch AS (UPDATE conversations SET last_message_at = %s "
            "WHERE id = %s)",
            before_params=[touch.at, timezone.now(), touch.lead_id, touch.at, touch.conversation_id],
        )
        return message, True
    if touch is not None:
        inbound_touch(touch=touch)
    if not savepoint:
        message = Message.objects.create(
            conversation=conversation, role=MessageRole.LEAD, text=text, dedupe_key=dedupe_key, **fields
        )
        return message, True
    try:
        with transaction.atomic():
            message = Message.objects.create(
                conversation=conversation, role=MessageRole.LEAD, text=text, dedupe_key=dedupe_key, **fields
            )
    except IntegrityError:
        return Message.objects.get(dedupe_key=dedupe_key), False
    return message, True


SUPERSEDED_NOTE = "A person took the lead over before this reply was sent."


def message_record_agent_reply(
    *,
    inbound: Any,
    text: str,
    prompt_version_id: int | None,
    delivery_status: str,
    model: str = "",
    prompt_tokens: int | None = None,
    completion_tokens: int | None = None,
    latency_ms: int | None = None,
    error: str = "",
    claim_for_lead_id: int | None = None,
) -> tuple[Any, bool]:
    """Store the agent's one reply to an inbound message and mark the turn answered.

    `error` notes what a check refused in the model's answer (the stored text is then what was sent).

    With `claim_for_lead_id` (the webhook, which carries the reply in its own body) the reply is stored
    already claimed for that delivery (`unknown`, attempt 1: message_claim_delivery's state), unless a person
    has taken the lead over by then: then it is stored superseded, never to be sent (the takeover lock,
    read fresh in the same statement). Its delivery_status says which.

    A partial unique index allows one agent reply per inbound message, so a retried or concurrent turn
    gets (existing reply, False) instead of answering twice.
    """
    from django.db import IntegrityError

    from leads.models import DeliveryStatus, Message, MessageRole

    status: Any = delivery_status
    attempts: Any = 0
    note: Any = error[:2000]
    if claim_for_lead_id is not None:
        taken_over = models.Exists(Lead.objects.filter(pk=claim_for_lead_id, taken_over_at__isnull=False))

        def unless_taken_over(superseded: Any, claimed: Any) -> Any:
            return models.Case(
                models.When(taken_over, then=models.Value(superseded)), default=models.Value(claimed)
            )

        status = unless_taken_over(DeliveryStatus.SUPERSEDED.value, DeliveryStatus.UNKNOWN.value)
        attempts = unless_taken_over(0, 1)
        note = unless_taken_over(SUPERSEDED_NOTE, error[:2000])
    reply = Message(
        conversation_id=inbound.conversation_id,
        role=MessageRole.AGENT,
        text=text,
        in_reply_to=inbound,
        prompt_version_id=prompt_version_id,
        delivery_status=status,
        attempts=attempts,
        model=model[:100],
        prompt_tokens=prompt_tokens,
        completion_tokens=completion_tokens,
        latency_ms=latency_ms,
        error=note,
    )
    computed = ["delivery_status", "attempts", "error"] if claim_for_lead_id is not None else []
    try:
        if connection.vendor == "postgresql":
            # One statement: the reply and the turn marked answered stand or fall together (a second reply
            # to the message fails the whole statement on the unique index), one round trip.
            with transaction.atomic() if connection.in_atomic_block else nullcontext():
                _insert_returning_pk(
                    obj=reply,
                    before="WITH answered AS (UPDATE messages SET delivery_status = %s, "
                    "attempts = attempts + 1, error = '' WHERE id = %s)",
                    before_params=[DeliveryStatus.ANSWERED.value, inbound.pk],
                    returning=computed,
                )
        else:
            with transaction.atomic():
                reply.save(force_insert=True)
                Message.objects.filter(pk=inbound.pk).update(
                    delivery_status=DeliveryStatus.ANSWERED, attempts=models.F("attempts") + 1, error=""
                )
            if computed:
                reply.refresh_from_db(fields=computed)
    except IntegrityError:
        return Message.objects.get(in_reply_to=inbound, role=MessageRole.AGENT), False
    return reply, True


def message_record_turn_failure(*, message_id: int, error: str, status: str = "failed") -> int:
    """Record a failed (or skipped) turn on the inbound message; returns the attempts made so far."""
    from leads.models import Message

    Message.objects.filter(pk=message_id).update(
        delivery_status=status, error=error[:2000], attempts=models.F("attempts") + 1
    )
    return Message.objects.filter(pk=message_id).values_list("attempts", flat=True).first() or 0


def message_claim_delivery(*, message_id: int, attempts: int) -> bool:
    """Claim the next delivery attempt of a pending outbound message (optimistic: the attempt counter is
    the version). Only one of two concurrent senders wins, so a reply is not sent twice."""
    from leads.models import DeliveryStatus, Message

    claimed = Message.objects.filter(pk=message_id, delivery_status=DeliveryStatus.PENDING, attempts=attempts)
    # In flight it reads "unknown" (maybe sent): no one else claims it until the sender records the outcome
    # (sent, pending again, undeliverable), so a second task or the sweep never sends it twice.
    return bool(claimed.update(attempts=models.F("attempts") + 1, delivery_status=DeliveryStatus.UNKNOWN))


def message_record_transcript(*, message_id: int, text: str) -> None:
    """A voice note's transcript becomes the lead message's text (its audio URL stays)."""
    from leads.models import Message

    Message.objects.filter(pk=message_id, role="lead").update(text=text)


def message_set_delivery(*, message_id: int, status: str, error: str = "") -> None:
    from leads.models import Message

    Message.objects.filter(pk=message_id).update(delivery_status=status, error=error[:2000])


def message_record_outbound(*, conversation_id: int, text: str, delivery_status: str, model: str = "") -> Any:
    """An agent line that answers no message in particular (the fallback line), kept in the transcript."""
    from leads.models import Message, MessageRole

    return Message.objects.create(
        conversation_id=conversation_id,
        role=MessageRole.AGENT,
        text=text,
        delivery_status=delivery_status,
        model=model[:100],
    )


@transaction.atomic
def lead_flag_for_human(*, lead: Lead, reason: str, pause_bot: bool, verb: str = "lead.handed_off") -> bool:
    """Flag a lead for a person (and optionally silence the bot). Notifies operators when newly flagged."""
    from leads import roles
    from leads.selectors import users_with_permission

    condition = models.Q(needs_human=False)
    if pause_bot:
        condition |= models.Q(bot_paused=False)
    changes: dict[str, Any] = {
        "needs_human": True,
        "handoff_reason": reason[:500],
        "updated_at": timezone.now(),
    }
    if pause_bot:
        changes["bot_paused"] = True
    updated = Lead.objects.filter(condition, pk=lead.pk).update(**changes)
    for name, value in changes.items():
        setattr(lead, name, value)
    if not updated:
        return False
    # The inbox's "needs a person" queue: the lead waits from now, unless it already waited.
    Lead.objects.filter(pk=lead.pk, waiting_since__isnull=True).update(waiting_since=changes["updated_at"])
    activity_record(verb=verb, lead=lead, data={"reason": reason[:500], "bot_paused": pause_bot})
    notification_notify(
        recipients=users_with_permission(perm=roles.PERM_CHANGE_LEAD),
        verb=verb,
        message=f"{lead.display_name} needs a person: {reason}"[:500],
        target=lead,
        url=f"/dashboard/leads/{lead.pk}/",
    )
    return True


def lead_record_followup_opt_out(*, lead_id: int, message_id: int, at: Any) -> bool:
    """The lead asked for no more messages ("stop"): recorded once, with the message that said it."""
    updated = Lead.objects.filter(pk=lead_id, followups_opted_out_at__isnull=True).update(
        followups_opted_out_at=at, updated_at=timezone.now()
    )
    if updated:
        activity_record(verb="lead.opted_out", lead_id=lead_id, data={"message_id": message_id})
    return bool(updated)


def message_record_followup(
    *,
    conversation_id: int,
    text: str,
    prompt_version_id: int,
    model: str = "",
    prompt_tokens: int | None = None,
    completion_tokens: int | None = None,
    latency_ms: int | None = None,
) -> Any:
    """An agent message the lead did not ask for (a follow-up), stamped with the version that wrote it."""
    from leads.models import DeliveryStatus, Message, MessageRole

    return Message.objects.create(
        conversation_id=conversation_id,
        role=MessageRole.AGENT,
        text=text,
        prompt_version_id=prompt_version_id,
        delivery_status=DeliveryStatus.PENDING,
        model=model[:100],
        prompt_tokens=prompt_tokens,
        completion_tokens=completion_tokens,
        latency_ms=latency_ms,
    )


@transaction.atomic
def lead_merge_qualification_data(*, lead: Lead, fields: dict[str, Any]) -> Lead:
    """Merge facts the agent learned into the lead's qualification data (row-locked, no lost update)."""
    if not fields:
        return lead
    locked = Lead.objects.select_for_update().only("id", "qualification_data").get(pk=lead.pk)
    data = dict(locked.qualification_data or {})
    data.update(fields)
    Lead.objects.filter(pk=lead.pk).update(qualification_data=data, updated_at=timezone.now())
    lead.qualification_data = data
    return lead
