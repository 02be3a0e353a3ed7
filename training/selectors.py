"""Reads over training examples. The agent (agent app) and the training pages both read through here."""

from collections.abc import Collection
from datetime import datetime, timedelta
from typing import Any

from django.db.models import Case, Count, F, IntegerField, Q, QuerySet, Value, When, Window
from django.db.models.functions import RowNumber
from django.utils import timezone

from leads.models import Message, MessageRole
from training.models import ExampleStatus, ExampleType, TrainingExample

# --- Training pages and API (training workflow) ------------------------------------------------------
EXCERPT_MESSAGES = 4


def training_example_list(*, filters: dict[str, Any] | None = None) -> QuerySet[TrainingExample]:
    """Examples with submitter, approver and lead joined in, narrowed by TrainingExampleFilter."""
    from training.filters import TrainingExampleFilter

    queryset = TrainingExample.objects.select_related(
        "submitted_by", "decided_by", "conversation__lead"
    ).order_by("-created_at", "-id")
    if filters is None:
        return queryset
    filterset = TrainingExampleFilter(data=filters, queryset=queryset)
    if not filterset.is_valid():
        from django.core.exceptions import ValidationError

        raise ValidationError({name: errors[0] for name, errors in filterset.errors.items()})
    return filterset.qs


def training_example_get(*, example_id: int) -> TrainingExample | None:
    return training_example_list().filter(pk=example_id).first()


def training_review_queue(*, status: str | None = None) -> QuerySet[TrainingExample]:
    """The managers' queue: pending first, then oldest first."""
    queryset = TrainingExample.objects.select_related(
        "submitted_by", "decided_by", "conversation__lead", "message"
    )
    if status:
        queryset = queryset.filter(status=status)
    return queryset.annotate(
        pending_first=Case(
            When(status=ExampleStatus.PENDING, then=Value(0)), default=Value(1), output_field=IntegerField()
        )
    ).order_by("pending_first", "created_at", "id")


def training_example_excerpts(
    *, examples: list[TrainingExample], size: int = EXCERPT_MESSAGES
) -> dict[int, list[Message]]:
    """The last `size` messages up to each flagged reply, for every example on a page, in one query."""
    flagged = [e.pk for e in examples if e.message_id is not None and e.conversation_id is not None]
    if not flagged:
        return {}
    example_path = "conversation__training_examples"
    rows = (
        Message.objects.filter(
            **{f"{example_path}__in": flagged, "id__lte": F(f"{example_path}__message_id")},
        )
        .annotate(
            example_id=F(f"{example_path}__id"),
            position=Window(RowNumber(), partition_by=[F(f"{example_path}__id")], order_by=[F("id").desc()]),
        )
        .filter(position__lte=size)
        .order_by("example_id", "id")
    )
    excerpts: dict[int, list[Message]] = {}
    for message in rows:
        excerpts.setdefault(message.example_id, []).append(message)
    return excerpts


def _week_start(now: datetime) -> datetime:
    local = timezone.localtime(now)
    return (local - timedelta(days=local.weekday())).replace(hour=0, minute=0, second=0, microsecond=0)


def training_next_unflagged_reply(*, message: Message) -> Message | None:
    """The lead's next agent reply after `message` that nobody has flagged yet: the one to look at next."""
    later = Q(created_at__gt=message.created_at) | Q(created_at=message.created_at, pk__gt=message.pk)
    lead_id = message.conversation.lead_id
    return (
        Message.objects.filter(later, role=MessageRole.AGENT, conversation__lead_id=lead_id)
        .filter(training_examples__isnull=True)
        .order_by("created_at", "id")
        .first()
    )


def training_examples_of_submitter(*, user: Any, limit: int = 10) -> list[TrainingExample]:
    """The user's latest examples, any status, with who decided them (the reviewer's note is on the row)."""
    return list(
        TrainingExample.objects.filter(submitted_by=user)
        .select_related("decided_by")
        .order_by("-created_at", "-id")[:limit]
    )


def training_example_stats() -> dict[str, Any]:
    """Totals by status and type and this week's submissions, in one aggregate query."""
    aggregates: dict[str, Any] = {"total": Count("id")}
    for status in ExampleStatus.values:
        aggregates[f"status_{status}"] = Count("id", filter=Q(status=status))
    for example_type in ExampleType.values:
        aggregates[f"type_{example_type}"] = Count("id", filter=Q(example_type=example_type))
    aggregates["this_week"] = Count("id", filter=Q(created_at__gte=_week_start(timezone.now())))
    row = TrainingExample.objects.aggregate(**aggregates)
    return {
        "total": row["total"],
        "pending": row["status_pending"],
        "this_week": row["this_week"],
        "by_status": [(label, value, row[f"status_{value}"]) for value, label in ExampleStatus.choices],
        "by_type": [(label, value, row[f"type_{value}"]) for value, label in ExampleType.choices],
    }


def training_example_flags_for_lead(*, lead_id: int) -> dict[int, list[TrainingExample]]:
    """The examples already flagged on each of a lead's messages, keyed by message id, in one query."""
    flags: dict[int, list[TrainingExample]] = {}
    rows = TrainingExample.objects.filter(conversation__lead_id=lead_id, message__isnull=False).only(
        "id", "message_id", "status", "example_type"
    )
    for example in rows:
        if example.message_id is not None:  # filtered above; for the type checker
            flags.setdefault(example.message_id, []).append(example)
    return flags


# --- The agent's prompt (agent app) ------------------------------------------------------------------


def training_examples_for_prompt(
    *,
    lead_message: str,
    limit: int,
    max_chars: int = 6000,
    max_field_chars: int = 500,
    candidates: int = 200,
    exclude_ids: Collection[int] = (),
) -> list[dict[str, Any]]:
    """The approved examples the agent shows the model, most relevant to the lead's message first.

    Ranked among all live (approved, not retired) examples by training.retrieval: embedding similarity when
    configured, else full-text ranking (PostgreSQL) or word stems (SQLite); `candidates` is kept for callers
    and no longer narrows the search. Bounded: at most `limit`, each field cut to `max_field_chars`, the
    total stopping at `max_chars`. Each item: {"id", "type", "user_message", "ai_response",
    "expected_response", "feedback", "score", "method"}; training.retrieval.services.example_uses_record
    stores what was shown with the reply.
    """
    from training.retrieval.selectors import training_examples_select

    return training_examples_select(
        lead_message=lead_message,
        limit=limit,
        max_chars=max_chars,
        max_field_chars=max_field_chars,
        exclude_ids=exclude_ids,
    )
