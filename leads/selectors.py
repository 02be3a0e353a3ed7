from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission
from django.db.models import Case, CharField, Count, F, Max, Q, QuerySet, Value, When
from django.db.models.functions import Cast, Concat

from leads.models import Activity, Lead, LeadStatus, Message, Notification
from leads.search import lead_ids_by_identity

User = get_user_model()

ACTIVITY_STATUS_CHANGED = "lead.status_changed"


def users_with_permission(*, perm: str) -> QuerySet:
    """Active users who hold `perm` through a group, directly, or as superusers."""
    app_label, codename = perm.split(".", 1)
    permission = Permission.objects.filter(content_type__app_label=app_label, codename=codename).first()
    condition = Q(is_superuser=True)
    if permission is not None:
        condition |= Q(groups__permissions=permission) | Q(user_permissions=permission)
    return User.objects.filter(condition, is_active=True).distinct()


def notifications_unread_count(*, user: Any) -> int:
    return Notification.objects.filter(recipient=user, read_at__isnull=True).count()


def notification_list(*, user: Any) -> QuerySet[Notification]:
    return Notification.objects.filter(recipient=user).order_by("-created_at", "-id")


def _notification_group_key() -> Case:
    """Notifications about the same object (a lead, an example) form one group; the others stand alone."""
    return Case(
        When(
            target_content_type__isnull=False,
            then=Concat(
                Cast("target_content_type_id", CharField()),
                Value(":"),
                "target_object_id",
                output_field=CharField(),
            ),
        ),
        default=Concat(Value("n"), Cast("id", CharField()), output_field=CharField()),
        output_field=CharField(),
    )


def notification_groups(*, user: Any) -> QuerySet:
    """One row per target, newest first: the latest notification's id, how many, and how many unread."""
    return (
        Notification.objects.filter(recipient=user)
        .annotate(group_key=_notification_group_key())
        .values("group_key")
        .annotate(
            latest_id=Max("id"),
            total=Count("id"),
            unread=Count("id", filter=Q(read_at__isnull=True)),
        )
        .order_by("-latest_id")
    )


def notifications_in_group(*, notification: Notification) -> QuerySet[Notification]:
    """The recipient's notifications about the same target as this one (just this one when it has none)."""
    siblings = Notification.objects.filter(recipient_id=notification.recipient_id)
    if notification.target_content_type_id is None:
        return siblings.filter(pk=notification.pk)
    return siblings.filter(
        target_content_type_id=notification.target_content_type_id,
        target_object_id=notification.target_object_id,
    )


def lead_list(*, search: str = "", status: str = "") -> QuerySet:
    """Leads for the dashboard list and the API: newest activity first, searchable by full name, @handle,
    email, phone or subscriber id (on PostgreSQL through the trigram index of leads.search)."""
    queryset = Lead.objects.select_related("assignee")
    if status:
        queryset = queryset.filter(status=status)
    search = search.strip()
    if search:
        queryset = queryset.filter(pk__in=lead_ids_by_identity(term=search))
    return queryset.order_by(F("last_message_at").desc(nulls_last=True), "-id")


def lead_transcript(*, lead: Any) -> QuerySet:
    """Every message of every conversation of a lead, oldest first, with the prompt version that wrote it."""
    return (
        Message.objects.filter(conversation__lead=lead)
        .select_related("prompt_version")
        .order_by("created_at", "id")
    )


def lead_status_change_latest(*, lead: Any, actor: Any) -> Activity | None:
    """The actor's latest status change of this lead (the lead page offers to undo it)."""
    return (
        Activity.objects.filter(lead=lead, actor=actor, verb=ACTIVITY_STATUS_CHANGED)
        .order_by("-id")
        .only("id")
        .first()
    )


def lead_activity_recent(*, lead: Any, limit: int = 15) -> QuerySet:
    return Activity.objects.filter(lead=lead).select_related("actor").order_by("-created_at", "-id")[:limit]


def lead_status_counts() -> dict[str, int]:
    """Leads per status plus the total and those waiting for a person, in one aggregate query."""
    aggregates = {status: Count("id", filter=Q(status=status)) for status in LeadStatus.values}
    aggregates["total"] = Count("id")
    aggregates["needs_human"] = Count("id", filter=Q(needs_human=True))
    aggregates["bot_paused"] = Count("id", filter=Q(bot_paused=True))
    return Lead.objects.aggregate(**aggregates)


@dataclass(frozen=True)
class LeadQualification:
    lead_id: int
    qualified_at: datetime


def lead_qualifications_since(
    *,
    since: datetime | None = None,
    exclude_lead_ids: QuerySet | Iterable[int] = (),
    limit: int = 500,
) -> list[LeadQualification]:
    """Each time a lead was moved to qualified (by the agent, a person, or the API), oldest first.

    `exclude_lead_ids` may be a values queryset (it becomes a subquery): a higher app pulls the
    qualifications it has not credited yet without leads knowing what crediting is.
    """
    queryset = Activity.objects.filter(
        verb=ACTIVITY_STATUS_CHANGED, data__to=LeadStatus.QUALIFIED.value, lead__isnull=False
    )
    if since is not None:
        queryset = queryset.filter(created_at__gte=since)
    rows = list(
        queryset.exclude(lead_id__in=exclude_lead_ids)
        .order_by("created_at", "id")
        .values_list("pk", "lead_id", "created_at")[:limit]
    )
    # A qualification a person took back at once (leads.services.lead_status_undo) never happened.
    undone = {
        int(undo_of)
        for undo_of in Activity.objects.filter(
            verb=ACTIVITY_STATUS_CHANGED,
            lead_id__in={lead_id for _, lead_id, _ in rows},
            data__has_key="undo_of",
        ).values_list("data__undo_of", flat=True)
    }
    return [
        LeadQualification(lead_id=lead_id, qualified_at=at) for pk, lead_id, at in rows if pk not in undone
    ]


@dataclass(frozen=True)
class LeadStatusChange:
    activity_id: int
    lead_id: int
    status: str
    at: datetime


def lead_status_changes_after(
    *, after_activity_id: int, before: datetime, limit: int = 500
) -> list[LeadStatusChange]:
    """Status changes recorded after activity `after_activity_id` and before `before`, in id order: a higher
    app follows the funnel with a cursor (`before` leaves room for transactions still committing)."""
    rows = (
        Activity.objects.filter(
            verb=ACTIVITY_STATUS_CHANGED,
            lead__isnull=False,
            pk__gt=after_activity_id,
            created_at__lt=before,
        )
        .order_by("id")
        .values_list("id", "lead_id", "data__to", "created_at")[:limit]
    )
    return [
        LeadStatusChange(activity_id=pk, lead_id=lead_id, status=str(to or ""), at=at)
        for pk, lead_id, to, at in rows
    ]


def conversation_open_for_subscriber(*, subscriber_id: str) -> Any:
    """The open conversation of a subscriber with its lead, in one query (None if either is missing)."""
    from leads.models import Conversation, ConversationStatus

    return (
        Conversation.objects.select_related("lead")
        .filter(lead__manychat_subscriber_id=subscriber_id, status=ConversationStatus.OPEN)
        .first()
    )


def message_history(*, conversation_id: int, limit: int, before_id: int | None = None) -> list[Any]:
    """The last `limit` messages of a conversation (those before message `before_id`), oldest first.

    Agent replies the lead never got (drafts, shadow drafts, superseded replies) are not part of it.
    """
    from leads.models import NEVER_SENT_STATUSES, Message

    queryset = Message.objects.filter(conversation_id=conversation_id).exclude(
        delivery_status__in=NEVER_SENT_STATUSES
    )
    if before_id is not None:
        queryset = queryset.filter(pk__lt=before_id)
    rows = list(
        queryset.only(
            "id",
            "role",
            "text",
            "created_at",
            "in_reply_to_id",
            "delivery_status",
            "conversation_id",
            "attachment_url",
        ).order_by("-created_at", "-id")[:limit]
    )
    rows.reverse()
    return rows


def lead_activity_exists(*, lead_id: int, verb: str, message_id: int) -> bool:
    """Whether an activity `verb` about message `message_id` was recorded for the lead."""
    from leads.models import Activity

    return Activity.objects.filter(lead_id=lead_id, verb=verb, data__message_id=message_id).exists()


def message_get_inbound(*, message_id: int) -> Any:
    """A lead's message with its conversation and lead, or None."""
    from leads.models import Message, MessageRole

    return (
        Message.objects.select_related("conversation__lead")
        .filter(pk=message_id, role=MessageRole.LEAD)
        .first()
    )


def message_agent_reply(*, inbound_id: int) -> Any:
    """The agent's reply to an inbound message, or None."""
    from leads.models import Message, MessageRole

    return Message.objects.filter(in_reply_to_id=inbound_id, role=MessageRole.AGENT).first()


def message_turns_incomplete(*, older_than: Any, newer_than: Any, max_attempts: int, limit: int) -> list[int]:
    """Ids of lead messages whose turn neither answered nor gave up, oldest first (for the retry sweep)."""
    from django.db.models import Exists, OuterRef

    from leads.models import DeliveryStatus, Message, MessageRole

    replies = Message.objects.filter(in_reply_to_id=OuterRef("pk"), role=MessageRole.AGENT)
    return list(
        Message.objects.filter(
            role=MessageRole.LEAD,
            delivery_status__in=[DeliveryStatus.RECEIVED, DeliveryStatus.FAILED],
            attempts__lt=max_attempts,
            created_at__lt=older_than,
            created_at__gte=newer_than,
        )
        .filter(~Exists(replies))
        .order_by("created_at", "id")
        .values_list("id", flat=True)[:limit]
    )


def message_replies_undelivered(*, older_than: Any, newer_than: Any, limit: int) -> list[int]:
    """Ids of inbound messages whose stored agent reply still waits for delivery (for the retry sweep)."""
    from leads.models import DeliveryStatus, Message, MessageRole

    return list(
        Message.objects.filter(
            role=MessageRole.AGENT,
            delivery_status=DeliveryStatus.PENDING,
            in_reply_to__isnull=False,
            created_at__lt=older_than,
            created_at__gte=newer_than,
        )
        .order_by("created_at", "id")
        .values_list("in_reply_to_id", flat=True)[:limit]
    )
