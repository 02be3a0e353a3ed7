"""Correction candidates: a person's answer after an agent reply, pre-filled as a correction to review.

The inbox (agent/inbox) creates one when an operator's message follows an agent reply; the operator adds
feedback and submits it (it becomes a pending correction example with its source in `metadata`) or
dismisses it.
"""

from typing import Any

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import IntegrityError, transaction
from django.db.models import QuerySet
from django.utils import timezone

from config.errors import Conflict
from leads import roles
from leads.models import DRAFT_STATUSES, Message, MessageRole
from training.models import CandidateStatus, CorrectionCandidate, ExampleType, TrainingExample
from training.services import _create_example, _lead_message_before, _validate_content

SOURCE_OPERATOR_REPLY = "operator_reply"


def _agent_reply_before(*, operator_message: Message) -> Message | None:
    """The agent reply this person's message answers in place of the bot, if no other person came between."""
    earlier = Message.objects.filter(
        conversation_id=operator_message.conversation_id, pk__lt=operator_message.pk
    )
    agent = (
        earlier.filter(role=MessageRole.AGENT)
        .exclude(model__in=("fallback", "holding"))
        .exclude(delivery_status__in=DRAFT_STATUSES)  # never sent as written (an edited draft has its own)
        .select_related("in_reply_to")
        .order_by("-pk")
        .first()
    )
    if agent is None:
        return None
    if earlier.filter(role=MessageRole.OPERATOR, pk__gt=agent.pk).exists():
        return None  # a person already answered after that reply: the first answer is the correction
    return agent


def correction_candidate_create_for_operator_reply(
    *, operator_message: Message
) -> CorrectionCandidate | None:
    """Pre-fill a correction from the agent reply before `operator_message`, once per agent reply."""
    if operator_message.role != MessageRole.OPERATOR:
        raise ValidationError({"message_id": "Only a person's message can correct the agent."})
    agent = _agent_reply_before(operator_message=operator_message)
    if agent is None:
        return None
    lead_message = _lead_message_before(reply=agent)
    if lead_message is None:
        return None
    try:
        with transaction.atomic():
            return CorrectionCandidate.objects.create(
                conversation_id=operator_message.conversation_id,
                agent_message=agent,
                operator_message=operator_message,
                user_message=lead_message.text,
                ai_response=agent.text,
                expected_response=operator_message.text,
                created_by_id=operator_message.sent_by_id,
            )
    except IntegrityError:
        return None  # this agent reply already has its candidate


def correction_candidate_create_for_draft(
    *, draft: Message, operator_message: Message
) -> CorrectionCandidate | None:
    """Pre-fill a correction from an agent draft a person edited before sending (the text they sent)."""
    if draft.role != MessageRole.AGENT or operator_message.role != MessageRole.OPERATOR:
        raise ValidationError({"message_id": "A correction pairs an agent draft with a person's message."})
    lead_message = _lead_message_before(reply=draft)
    if lead_message is None:
        return None
    try:
        with transaction.atomic():
            return CorrectionCandidate.objects.create(
                conversation_id=operator_message.conversation_id,
                agent_message=draft,
                operator_message=operator_message,
                user_message=lead_message.text,
                ai_response=draft.text,
                expected_response=operator_message.text,
                created_by_id=operator_message.sent_by_id,
            )
    except IntegrityError:
        return None  # this draft already has its candidate


def correction_candidate_list(*, conversation_ids: list[int], status: str = CandidateStatus.OPEN) -> QuerySet:
    return (
        CorrectionCandidate.objects.filter(conversation_id__in=conversation_ids, status=status)
        .select_related("agent_message", "operator_message")
        .order_by("-created_at", "-id")
    )


def correction_candidate_get(*, candidate_id: int) -> CorrectionCandidate | None:
    return CorrectionCandidate.objects.select_related("conversation").filter(pk=candidate_id).first()


def _lock_open(*, candidate: CorrectionCandidate) -> CorrectionCandidate:
    locked = CorrectionCandidate.objects.select_for_update().get(pk=candidate.pk)
    if locked.status != CandidateStatus.OPEN:
        raise Conflict(f"This candidate was already {locked.status}.", field="status")
    return locked


@transaction.atomic
def correction_candidate_submit(
    *, candidate: CorrectionCandidate, user: Any, feedback: str, expected_response: str | None = None
) -> TrainingExample:
    """Send the candidate to the review queue as a pending correction example."""
    if not user.has_perm(roles.PERM_SUBMIT_EXAMPLE):
        raise PermissionDenied("Your role may not submit training examples.")
    locked = _lock_open(candidate=candidate)
    agent = Message.objects.select_related("conversation").get(pk=locked.agent_message_id)
    fields = {
        "user_message": locked.user_message,
        "ai_response": locked.ai_response,
        "example_type": ExampleType.CORRECTION,
        "feedback": (feedback or "").strip(),
        "expected_response": (
            locked.expected_response if expected_response is None else expected_response
        ).strip(),
    }
    _validate_content(**fields)
    example = _create_example(
        submitter=user,
        lead_id=agent.conversation.lead_id,
        source=SOURCE_OPERATOR_REPLY,
        conversation_id=agent.conversation_id,
        message=agent,
        metadata={
            "source": SOURCE_OPERATOR_REPLY,
            "candidate_id": locked.pk,
            "operator_message_id": locked.operator_message_id,
            "prompt_version_id": agent.prompt_version_id,
            "lead_message_id": agent.in_reply_to_id,
        },
        **fields,
    )
    locked.status = CandidateStatus.SUBMITTED
    locked.training_example = example
    locked.decided_by = user
    locked.decided_at = timezone.now()
    locked.save(update_fields=["status", "training_example", "decided_by", "decided_at"])
    return example


SOURCE_SCORING = "scoring"


@transaction.atomic
def training_example_submit_from_scoring(
    *, message: Message, example_type: str, feedback: str, details: dict[str, Any]
) -> TrainingExample | None:
    """A scored conversation's reply into the review queue as a pending example (source "scoring"), with
    the check that failed and its turn in `details`. None when the reply already has an example."""
    from leads.selectors import users_with_permission
    from leads.services import activity_record, notification_notify
    from training.models import ExampleStatus
    from training.review.services import example_similar_record

    if message.role != MessageRole.AGENT:
        raise ValidationError({"message_id": "Only an agent reply can be scored."})
    lead_message = _lead_message_before(reply=message)
    fields = {
        "user_message": (lead_message.text if lead_message is not None else "") or "(no message)",
        "ai_response": message.text,
        "example_type": example_type,
        "feedback": feedback.strip(),
        "expected_response": "",
    }
    _validate_content(**fields)
    if TrainingExample.objects.filter(message=message).exists():
        return None
    try:
        with transaction.atomic():
            example = TrainingExample.objects.create(
                submitted_by=None,
                status=ExampleStatus.PENDING,
                conversation_id=message.conversation_id,
                message=message,
                metadata={
                    **details,
                    "source": SOURCE_SCORING,
                    "prompt_version_id": message.prompt_version_id,
                    "lead_message_id": lead_message.pk if lead_message is not None else None,
                },
                **fields,
            )
    except IntegrityError:
        return None  # flagged meanwhile (one example per reply)
    example_similar_record(example=example)
    lead_id = Message.objects.filter(pk=message.pk).values_list("conversation__lead_id", flat=True).first()
    activity_record(
        verb="training.submitted",
        lead_id=lead_id,
        data={"example_id": example.pk, "example_type": example.example_type, "source": SOURCE_SCORING},
    )
    notification_notify(
        recipients=list(users_with_permission(perm=roles.PERM_REVIEW_EXAMPLE)),
        verb="training.submitted",
        message=f"Scoring sent a {example.example_type} example #{example.pk} for review.",
        target=example,
        url=f"/dashboard/training/library/{example.pk}/",
    )
    return example


@transaction.atomic
def correction_candidate_dismiss(*, candidate: CorrectionCandidate, user: Any) -> CorrectionCandidate:
    if not user.has_perm(roles.PERM_SUBMIT_EXAMPLE):
        raise PermissionDenied("Your role may not dismiss correction candidates.")
    locked = _lock_open(candidate=candidate)
    locked.status = CandidateStatus.DISMISSED
    locked.decided_by = user
    locked.decided_at = timezone.now()
    locked.save(update_fields=["status", "decided_by", "decided_at"])
    return locked
