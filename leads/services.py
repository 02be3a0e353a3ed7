from collections.abc import Iterable
from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.contenttypes.models import ContentType
from django.db import models, transaction
from django.utils import timezone

from leads.models import Activity, Lead, LeadStatus, Notification

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


def notifications_mark_all_read(*, user: Any) -> int:
    return Notification.objects.filter(recipient=user, read_at__isnull=True).update(read_at=timezone.now())


@transaction.atomic
def lead_set_status(*, lead: Lead, status: str, actor: Any = None, reason: str = "") -> Lead:
    """Move a lead to a new status; qualifying it credits the prompt version that spoke last."""
    if status not in LeadStatus.values:
        raise ValueError(f"Unknown lead status {status!r}")
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
        data={"from": previous, "to": status, "reason": reason},
    )
    if status == LeadStatus.QUALIFIED:
        from prompts.tasks import record_qualification

        lead_id, qualified_at = lead.pk, timezone.now().isoformat()
        transaction.on_commit(lambda: record_qualification.delay(lead_id, qualified_at))
    return lead


@transaction.atomic
def lead_pause_bot(*, lead: Lead, actor: Any = None, reason: str = "") -> Lead:
    updated = Lead.objects.filter(pk=lead.pk, bot_paused=False).update(bot_paused=True, updated_at=timezone.now())
    if updated:
        activity_record(verb="lead.bot_paused", lead=lead, actor=actor, data={"reason": reason})
    lead.refresh_from_db(fields=["bot_paused", "updated_at"])
    return lead


@transaction.atomic
def lead_resume_bot(*, lead: Lead, actor: Any = None) -> Lead:
    """Give the lead back to the bot: clears both a manual pause and a model handoff."""
    updated = Lead.objects.filter(pk=lead.pk).filter(models.Q(bot_paused=True) | models.Q(needs_human=True)).update(
        bot_paused=False, needs_human=False, handoff_reason="", updated_at=timezone.now()
    )
    if updated:
        activity_record(verb="lead.bot_resumed", lead=lead, actor=actor)
    lead.refresh_from_db(fields=["bot_paused", "needs_human", "handoff_reason", "updated_at"])
    return lead
