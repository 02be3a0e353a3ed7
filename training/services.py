from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from django.conf import settings
from django.contrib.auth.models import AbstractUser
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import IntegrityError, transaction
from django.template.defaultfilters import pluralize
from django.utils import timezone

from leads import roles
from leads.models import Message, MessageRole
from leads.selectors import users_with_permission
from leads.services import activity_record, notification_notify
from training.models import ExampleStatus, ExampleType, TrainingExample

EDITABLE_FIELDS = ("user_message", "ai_response", "expected_response", "feedback", "example_type")


def _lead_id_of(example: TrainingExample) -> int | None:
    conversation = example.conversation  # None without a query when conversation_id is None
    return conversation.lead_id if conversation is not None else None


def _require(user: Any, perm: str, action: str) -> None:
    if not user.has_perm(perm):
        raise PermissionDenied(f"Your role may not {action}.")


@transaction.atomic
def training_example_decide(
    *, example: TrainingExample, reviewer: Any, status: str, note: str = ""
) -> TrainingExample:
    """Approve or reject a pending example (admin and manager only)."""
    _require(reviewer, roles.PERM_REVIEW_EXAMPLE, "approve or reject training examples")
    if status not in (ExampleStatus.APPROVED, ExampleStatus.REJECTED):
        raise ValidationError({"action": "Must be approve or reject."})
    example = TrainingExample.objects.select_for_update().get(pk=example.pk)
    if example.status != ExampleStatus.PENDING:
        raise ValidationError({"status": f"This example was already {example.status}; reopen it first."})
    if (
        status == ExampleStatus.APPROVED
        and settings.TRAINING_FORBID_SELF_APPROVAL
        and example.submitted_by_id == reviewer.pk
    ):
        raise PermissionDenied("You submitted this example: another manager must approve it.")
    example.status = status
    example.decided_by = reviewer
    example.decided_at = timezone.now()
    example.review_note = note.strip()
    example.save(update_fields=["status", "decided_by", "decided_at", "review_note", "updated_at"])
    if status == ExampleStatus.APPROVED:
        from training.retrieval.services import example_embedding_schedule
        from training.retrieval.vectors import vectors_changed

        example_embedding_schedule(example_id=example.pk)
        vectors_changed()
    verb = "training.approved" if status == ExampleStatus.APPROVED else "training.rejected"
    lead_id = _lead_id_of(example)
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
            url=f"/dashboard/training/library/{example.pk}/",
        )
    return example


def training_example_approve(*, example: TrainingExample, reviewer: Any, note: str = "") -> TrainingExample:
    return training_example_decide(
        example=example, reviewer=reviewer, status=ExampleStatus.APPROVED, note=note
    )


def training_example_reject(*, example: TrainingExample, reviewer: Any, note: str = "") -> TrainingExample:
    return training_example_decide(
        example=example, reviewer=reviewer, status=ExampleStatus.REJECTED, note=note
    )


def _display_name(user: Any) -> str:
    return user.get_full_name() or user.get_username()


def _validate_content(
    *, user_message: str, ai_response: str, example_type: str, feedback: str, expected_response: str
) -> None:
    """The old system's rules, checked here for a clear message per field; the CHECK constraints back them."""
    errors: dict[str, str] = {}
    if not user_message.strip():
        errors["user_message"] = "The lead's message is required."
    if not ai_response.strip():
        errors["ai_response"] = "The agent's response is required."
    if example_type not in ExampleType.values:
        errors["example_type"] = f"Must be one of: {', '.join(ExampleType.values)}."
    if not feedback.strip():
        errors["feedback"] = "Feedback is required: say what is good or wrong about this response."
    if example_type == ExampleType.CORRECTION and not expected_response.strip():
        errors["expected_response"] = "A correction needs the expected response."
    if errors:
        raise ValidationError(errors)


def _notify_reviewers(*, example: TrainingExample, submitter: Any) -> None:
    reviewers = users_with_permission(perm=roles.PERM_REVIEW_EXAMPLE).exclude(pk=submitter.pk)
    notification_notify(
        recipients=list(reviewers),
        verb="training.submitted",
        message=f"{_display_name(submitter)} submitted a {example.example_type} example "
        f"#{example.pk} for review.",
        target=example,
        url=f"/dashboard/training/library/{example.pk}/",
    )


def _create_example(*, submitter: Any, lead_id: int | None, source: str, **fields: Any) -> TrainingExample:
    from training.review.errors import ExampleAlreadyFlagged
    from training.review.services import example_similar_record

    message = fields.get("message")
    if message is not None:
        # One example per agent reply (training_one_example_per_reply): a second flag opens the first.
        existing = TrainingExample.objects.filter(message=message).values_list("pk", flat=True).first()
        if existing is not None:
            raise ExampleAlreadyFlagged(example_id=existing)
    try:
        with transaction.atomic():
            example = TrainingExample.objects.create(
                submitted_by=submitter, status=ExampleStatus.PENDING, **fields
            )
    except IntegrityError:
        existing = TrainingExample.objects.filter(message=message).values_list("pk", flat=True).first()
        if message is None or existing is None:
            raise
        raise ExampleAlreadyFlagged(example_id=existing) from None
    example_similar_record(example=example)
    activity_record(
        verb="training.submitted",
        lead_id=lead_id,
        actor=submitter,
        data={"example_id": example.pk, "example_type": example.example_type, "source": source},
    )
    _notify_reviewers(example=example, submitter=submitter)
    return example


def _lead_message_before(*, reply: Message) -> Message | None:
    asked = reply.in_reply_to  # None without a query when in_reply_to_id is None
    if asked is not None and asked.role == MessageRole.LEAD:
        return asked
    return (
        Message.objects.filter(conversation_id=reply.conversation_id, role=MessageRole.LEAD)
        .filter(created_at__lte=reply.created_at, id__lt=reply.pk)
        .order_by("-created_at", "-id")
        .first()
    )


@transaction.atomic
def training_example_submit_from_conversation(
    *,
    message: Message,
    submitter: Any,
    example_type: str,
    feedback: str,
    expected_response: str = "",
    conversation_id: int | None = None,
) -> TrainingExample:
    """Flag an agent reply: the lead message before it becomes user_message, the reply ai_response."""
    _require(submitter, roles.PERM_SUBMIT_EXAMPLE, "submit training examples")
    if conversation_id is not None and message.conversation_id != conversation_id:
        raise ValidationError({"message_id": "This message does not belong to that conversation."})
    if message.role != MessageRole.AGENT:
        raise ValidationError(
            {"message_id": "Pick one of the agent's replies, not a lead or operator message."}
        )
    lead_message = _lead_message_before(reply=message)
    if lead_message is None:
        raise ValidationError(
            {"message_id": "No lead message comes before this reply; use a manual example."}
        )
    fields = {
        "user_message": lead_message.text,
        "ai_response": message.text,
        "example_type": example_type,
        "feedback": feedback.strip(),
        "expected_response": expected_response.strip(),
    }
    _validate_content(**fields)
    return _create_example(
        submitter=submitter,
        lead_id=message.conversation.lead_id,
        source="conversation",
        conversation_id=message.conversation_id,
        message=message,
        metadata={"lead_message_id": lead_message.pk, "prompt_version_id": message.prompt_version_id},
        **fields,
    )


@transaction.atomic
def training_example_submit_manual(
    *,
    submitter: Any,
    user_message: str,
    ai_response: str,
    example_type: str,
    feedback: str,
    expected_response: str = "",
) -> TrainingExample:
    _require(submitter, roles.PERM_SUBMIT_EXAMPLE, "submit training examples")
    fields = {
        "user_message": user_message.strip(),
        "ai_response": ai_response.strip(),
        "example_type": example_type,
        "feedback": feedback.strip(),
        "expected_response": expected_response.strip(),
    }
    _validate_content(**fields)
    return _create_example(submitter=submitter, lead_id=None, source="manual", **fields)


def _lock_pending_for_edit(*, example: TrainingExample, user: Any, action: str) -> TrainingExample:
    example = TrainingExample.objects.select_for_update().get(pk=example.pk)
    is_submitter = example.submitted_by_id is not None and example.submitted_by_id == user.pk
    if not (is_submitter and user.has_perm(roles.PERM_SUBMIT_EXAMPLE)) and not user.has_perm(
        roles.PERM_CHANGE_EXAMPLE
    ):
        raise PermissionDenied(f"Only its submitter or a manager may {action} this example.")
    if example.status != ExampleStatus.PENDING:
        raise ValidationError(
            {"status": f"Only pending examples can be changed; this one is {example.status}."}
        )
    return example


@transaction.atomic
def training_example_update(*, example: TrainingExample, user: Any, data: dict[str, Any]) -> TrainingExample:
    """Edit a pending example's content. Status and approval fields are never taken from `data`."""
    example = _lock_pending_for_edit(example=example, user=user, action="edit")
    changed = [name for name in EDITABLE_FIELDS if name in data and data[name] != getattr(example, name)]
    for name in changed:
        value = data[name]
        setattr(example, name, value.strip() if isinstance(value, str) and name != "example_type" else value)
    _validate_content(**{name: getattr(example, name) for name in EDITABLE_FIELDS})
    if changed:
        example.save(update_fields=[*changed, "updated_at"])
        activity_record(
            verb="training.updated",
            lead_id=_lead_id_of(example),
            actor=user,
            data={"example_id": example.pk, "fields": changed},
        )
    return example


@transaction.atomic
def training_example_delete(*, example: TrainingExample, user: Any) -> None:
    example = _lock_pending_for_edit(example=example, user=user, action="delete")
    example_id = example.pk
    lead_id = _lead_id_of(example)
    example.delete()
    activity_record(verb="training.deleted", lead_id=lead_id, actor=user, data={"example_id": example_id})


@transaction.atomic
def training_example_reopen(*, example: TrainingExample, user: Any, note: str = "") -> TrainingExample:
    """A manager sends a decided example back to pending, clearing the decision."""
    _require(user, roles.PERM_REVIEW_EXAMPLE, "reopen training examples")
    example = TrainingExample.objects.select_for_update().get(pk=example.pk)
    if example.status == ExampleStatus.PENDING:
        raise ValidationError({"status": "This example is already pending."})
    previous = example.status
    example.status = ExampleStatus.PENDING
    example.decided_by = None
    example.decided_at = None
    example.review_note = note.strip()
    example.save(update_fields=["status", "decided_by", "decided_at", "review_note", "updated_at"])
    if previous == ExampleStatus.APPROVED:
        from training.retrieval.vectors import vectors_changed

        vectors_changed()  # out of the agent's examples at once, in every worker
    activity_record(
        verb="training.reopened",
        lead_id=_lead_id_of(example),
        actor=user,
        data={"example_id": example.pk, "from": previous, "note": example.review_note},
    )
    if example.submitted_by_id and example.submitted_by_id != user.pk:
        notification_notify(
            recipients=[example.submitted_by],
            verb="training.reopened",
            message=f"Your {example.example_type} example #{example.pk} was reopened for review by "
            f"{_display_name(user)}.",
            target=example,
            url=f"/dashboard/training/library/{example.pk}/",
        )
    return example


class BulkAction(StrEnum):
    APPROVE = "approve"
    REJECT = "reject"
    REOPEN = "reopen"


BULK_DONE_LABEL = {
    BulkAction.APPROVE: "Approved",
    BulkAction.REJECT: "Rejected",
    BulkAction.REOPEN: "Reopened",
}


@dataclass(frozen=True)
class BulkResult:
    action: BulkAction
    done: int
    skipped: tuple[tuple[int, str], ...]  # (example id, why)

    @property
    def done_message(self) -> str:
        return f"{BULK_DONE_LABEL[self.action]} {self.done} example{pluralize(self.done)}."

    @property
    def skipped_message(self) -> str:
        return "Skipped " + "; ".join(f"#{example_id}: {why}" for example_id, why in self.skipped)


def training_examples_decide_bulk(
    *, example_ids: Iterable[int], reviewer: AbstractUser, action: BulkAction, note: str = ""
) -> BulkResult:
    """Approve, reject or reopen many examples, oldest first, each in its own transaction: one that may not
    be decided (already decided, no permission) is skipped with the reason, the others still go through."""
    action = BulkAction(action)
    done, skipped = 0, []
    for example in TrainingExample.objects.filter(pk__in=list(example_ids)).order_by("created_at", "id"):
        try:
            if action == BulkAction.REOPEN:
                training_example_reopen(example=example, user=reviewer, note=note)
            else:
                status = ExampleStatus.APPROVED if action == BulkAction.APPROVE else ExampleStatus.REJECTED
                training_example_decide(example=example, reviewer=reviewer, status=status, note=note)
            done += 1
        except (ValidationError, PermissionDenied) as exc:
            skipped.append((example.pk, " ".join(getattr(exc, "messages", [str(exc)]))))
    return BulkResult(action=action, done=done, skipped=tuple(skipped))
