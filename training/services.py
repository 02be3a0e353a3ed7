from typing import Any

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.utils import timezone

from leads import roles
from leads.services import activity_record, notification_notify
from training.models import ExampleStatus, TrainingExample


def _require(user: Any, perm: str, action: str) -> None:
    if not user.has_perm(perm):
        raise PermissionDenied(f"Your role may not {action}.")


@transaction.atomic
def training_example_decide(*, example: TrainingExample, reviewer: Any, status: str, note: str = "") -> TrainingExample:
    """Approve or reject a pending example (admin and manager only)."""
    _require(reviewer, roles.PERM_REVIEW_EXAMPLE, "approve or reject training examples")
    if status not in (ExampleStatus.APPROVED, ExampleStatus.REJECTED):
        raise ValidationError({"action": "Must be approve or reject."})
    example = TrainingExample.objects.select_for_update().get(pk=example.pk)
    if example.status != ExampleStatus.PENDING:
        raise ValidationError({"status": f"This example was already {example.status}; reopen it first."})
    example.status = status
    example.approved_by = reviewer
    example.approved_at = timezone.now()
    example.review_note = note.strip()
    example.save(update_fields=["status", "approved_by", "approved_at", "review_note", "updated_at"])
    verb = "training.approved" if status == ExampleStatus.APPROVED else "training.rejected"
    lead_id = example.conversation.lead_id if example.conversation_id else None
    activity_record(
        verb=verb,
        lead_id=lead_id,
        actor=reviewer,
        data={"example_id": example.pk, "note": example.review_note},
    )
    if example.submitted_by_id and example.submitted_by_id != reviewer.pk:
        notification_notify(
            recipients=[example.submitted_by],
            verb=verb,
            message=f"Your {example.example_type} example #{example.pk} was {status} by "
            f"{reviewer.get_full_name() or reviewer.get_username()}"
            + (f": {example.review_note}" if example.review_note else "."),
            target=example,
            url="/dashboard/training/",
        )
    return example


def training_example_approve(*, example: TrainingExample, reviewer: Any, note: str = "") -> TrainingExample:
    return training_example_decide(example=example, reviewer=reviewer, status=ExampleStatus.APPROVED, note=note)


def training_example_reject(*, example: TrainingExample, reviewer: Any, note: str = "") -> TrainingExample:
    return training_example_decide(example=example, reviewer=reviewer, status=ExampleStatus.REJECTED, note=note)
