"""Writes of an example's lifecycle beyond submit/decide (training.services): similar examples recorded at
submission, approve with the reviewer's edit, retire, review-by dates."""

from datetime import date
from typing import Any

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.utils import timezone

from leads import roles
from leads.services import activity_record, notification_notify
from training.models import ExampleStatus, ExampleType, TrainingExample
from training.retrieval.vectors import vectors_changed
from training.review import selectors


def _lead_id(example: TrainingExample) -> int | None:
    return example.conversation.lead_id if example.conversation_id else None


def _require_reviewer(user: Any, action: str) -> None:
    if not user.has_perm(roles.PERM_REVIEW_EXAMPLE):
        raise PermissionDenied(f"Your role may not {action}.")


def example_similar_record(*, example: TrainingExample) -> list[selectors.Similar]:
    """Store the approved examples this one duplicates or contradicts (metadata["similar"]), so the
    submitter is told at once and the review queue shows them without searching again per row."""
    found = selectors.example_similar_approved(example=example, exclude_id=example.pk)
    metadata = dict(example.metadata or {})
    metadata["similar"] = [item.as_json() for item in found]
    TrainingExample.objects.filter(pk=example.pk).update(metadata=metadata)
    example.metadata = metadata
    return found


@transaction.atomic
def training_example_approve_edited(
    *,
    example: TrainingExample,
    reviewer: Any,
    expected_response: str,
    note: str = "",
    review_by: date | None = None,
) -> TrainingExample:
    """Approve a pending example with the reviewer's edit of the expected response, recorded in its history.

    An edited good example becomes a correction (the agent's reply stays as what not to say). An edit equal
    to the current text is a plain approval.
    """
    from training.services import training_example_decide

    _require_reviewer(reviewer, "approve or reject training examples")
    locked = TrainingExample.objects.select_for_update().get(pk=example.pk)
    if locked.status != ExampleStatus.PENDING:
        raise ValidationError({"status": f"This example was already {locked.status}; reopen it first."})
    edited = (expected_response or "").strip()
    if locked.example_type == ExampleType.CORRECTION and not edited:
        raise ValidationError({"expected_response": "A correction needs the expected response."})
    fields: list[str] = []
    if edited and edited != locked.expected_response:
        before = locked.expected_response
        locked.expected_response = edited
        fields.append("expected_response")
        if locked.example_type == ExampleType.GOOD:
            locked.example_type = ExampleType.CORRECTION
            fields.append("example_type")
        metadata = dict(locked.metadata or {})
        metadata["reviewer_edit"] = {"before": before, "by": reviewer.pk, "at": timezone.now().isoformat()}
        locked.metadata = metadata
        fields.append("metadata")
        locked.save(update_fields=[*fields, "updated_at"])
        activity_record(
            verb="training.edited_on_review",
            lead_id=_lead_id(locked),
            actor=reviewer,
            data={"example_id": locked.pk, "before": before[:2000], "after": edited[:2000]},
        )
    if review_by is not None:
        locked.review_by = review_by
        locked.save(update_fields=["review_by", "updated_at"])
    return training_example_decide(
        example=locked, reviewer=reviewer, status=ExampleStatus.APPROVED, note=note
    )


@transaction.atomic
def training_example_retire(*, example: TrainingExample, user: Any, note: str = "") -> TrainingExample:
    """Take an approved example out of the agent's examples now (it stays approved in the library)."""
    _require_reviewer(user, "retire training examples")
    locked = TrainingExample.objects.select_for_update().get(pk=example.pk)
    if locked.status != ExampleStatus.APPROVED:
        raise ValidationError({"status": "Only approved examples can be retired."})
    if locked.retired_at is not None:
        raise ValidationError({"status": "This example is already retired."})
    locked.retired_at = timezone.now()
    locked.save(update_fields=["retired_at", "updated_at"])
    vectors_changed()
    activity_record(
        verb="training.retired",
        lead_id=_lead_id(locked),
        actor=user,
        data={"example_id": locked.pk, "note": note.strip()[:2000]},
    )
    if locked.submitted_by_id and locked.submitted_by_id != user.pk:
        notification_notify(
            recipients=[locked.submitted_by],
            verb="training.retired",
            message=f"Your example #{locked.pk} was retired" + (f": {note.strip()}" if note.strip() else "."),
            target=locked,
            url=f"/dashboard/training/library/{locked.pk}/",
        )
    return locked


@transaction.atomic
def training_example_restore(*, example: TrainingExample, user: Any) -> TrainingExample:
    _require_reviewer(user, "restore training examples")
    locked = TrainingExample.objects.select_for_update().get(pk=example.pk)
    if locked.retired_at is None:
        raise ValidationError({"status": "This example is not retired."})
    locked.retired_at = None
    locked.save(update_fields=["retired_at", "updated_at"])
    vectors_changed()
    activity_record(
        verb="training.restored", lead_id=_lead_id(locked), actor=user, data={"example_id": locked.pk}
    )
    return locked


@transaction.atomic
def training_example_set_review_by(
    *, example: TrainingExample, user: Any, review_by: date | None
) -> TrainingExample:
    _require_reviewer(user, "set review dates")
    locked = TrainingExample.objects.select_for_update().get(pk=example.pk)
    if review_by is not None and review_by < timezone.localdate() and locked.review_by != review_by:
        raise ValidationError({"review_by": "Pick today or a later date."})
    locked.review_by = review_by
    locked.save(update_fields=["review_by", "updated_at"])
    activity_record(
        verb="training.review_by_set",
        lead_id=_lead_id(locked),
        actor=user,
        data={"example_id": locked.pk, "review_by": review_by.isoformat() if review_by else None},
    )
    return locked
