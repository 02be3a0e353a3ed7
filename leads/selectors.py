from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission
from django.db.models import Count, F, Q, QuerySet

from leads.models import Activity, Lead, LeadStatus, Message, Notification

User = get_user_model()


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


def lead_list(*, search: str = "", status: str = "") -> QuerySet:
    """Leads for the dashboard list and the API: newest activity first, searchable by name, handle or id."""
    queryset = Lead.objects.select_related("assignee")
    if status:
        queryset = queryset.filter(status=status)
    search = search.strip()
    if search:
        queryset = queryset.filter(
            Q(first_name__icontains=search)
            | Q(last_name__icontains=search)
            | Q(username__icontains=search)
            | Q(email__icontains=search)
            | Q(phone__icontains=search)
            | Q(manychat_subscriber_id=search)
        )
    return queryset.order_by(F("last_message_at").desc(nulls_last=True), "-id")


def lead_transcript(*, lead: Any) -> QuerySet:
    """Every message of every conversation of a lead, oldest first, with the prompt version that wrote it."""
    return (
        Message.objects.filter(conversation__lead=lead)
        .select_related("prompt_version")
        .order_by("created_at", "id")
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
