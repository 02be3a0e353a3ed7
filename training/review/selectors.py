"""Reads for the review queue, the example library and an example's page."""

from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

from django.db.models import Case, Count, IntegerField, OuterRef, Q, QuerySet, Subquery, Value, When
from django.db.models.functions import Coalesce
from django.utils import timezone

from leads.models import Activity
from training.models import ExampleStatus, ExampleType, TrainingExample
from training.retrieval.models import ExampleUse
from training.retrieval.selectors import examples_rank, trigram_similarity
from training.review.fields import DECIDED_AT, DECIDED_BY

# Lead messages at least this alike (pg_trgm-style trigram similarity, 0..1) are "the same question".
NEAR_DUPLICATE = 0.5
# With embeddings, a cosine this high also counts as the same question.
NEAR_DUPLICATE_COSINE = 0.9
# Answers less alike than this say different things.
DIFFERENT_ANSWER = 0.4
SIMILAR_CANDIDATES = 10
MAX_SIMILAR = 5

SOURCE_CONVERSATION = "conversation"
SOURCE_MANUAL = "manual"
SOURCE_OPERATOR = "operator_reply"
SOURCE_REHEARSAL = "rehearsal"
SOURCE_SCORING = "scoring"  # training.candidates.training_example_submit_from_scoring
SOURCES = (
    (SOURCE_CONVERSATION, "A conversation"),
    (SOURCE_MANUAL, "By hand"),
    (SOURCE_OPERATOR, "An operator's reply"),
    (SOURCE_REHEARSAL, "A rehearsal"),
    (SOURCE_SCORING, "Conversation scoring"),
)
_TAGGED = (SOURCE_OPERATOR, SOURCE_REHEARSAL, SOURCE_SCORING)


def example_source(example: TrainingExample) -> str:
    tagged = example.metadata.get("source") if isinstance(example.metadata, dict) else None
    if tagged in _TAGGED:
        return tagged
    return SOURCE_CONVERSATION if example.message_id else SOURCE_MANUAL


def _source_filter(source: str) -> Q:
    if source in _TAGGED:
        return Q(metadata__source=source)
    untagged = ~Q(metadata__source__in=list(_TAGGED)) | Q(metadata__source__isnull=True)
    if source == SOURCE_CONVERSATION:
        return Q(message__isnull=False) & untagged
    return Q(message__isnull=True) & untagged


@dataclass
class ExampleFilters:
    status: str = ExampleStatus.PENDING  # "" or "all": every status
    example_type: str = ""
    submitted_by: int | None = None
    source: str = ""
    channel: str = ""
    created_from: date | None = None
    created_to: date | None = None
    q: str = ""
    due: bool = False
    retired: bool | None = None  # None: both; library default shows live ones only


def _day_start(day: date) -> datetime:
    return timezone.make_aware(datetime.combine(day, datetime.min.time()))


def examples_filtered(*, filters: ExampleFilters) -> QuerySet[TrainingExample]:
    queryset = TrainingExample.objects.select_related("submitted_by", DECIDED_BY, "conversation__lead")
    if filters.status and filters.status != "all":
        queryset = queryset.filter(status=filters.status)
    if filters.example_type:
        queryset = queryset.filter(example_type=filters.example_type)
    if filters.submitted_by:
        queryset = queryset.filter(submitted_by_id=filters.submitted_by)
    if filters.source:
        queryset = queryset.filter(_source_filter(filters.source))
    if filters.channel:
        queryset = queryset.filter(conversation__channel=filters.channel)
    if filters.created_from:
        queryset = queryset.filter(created_at__gte=_day_start(filters.created_from))
    if filters.created_to:
        queryset = queryset.filter(created_at__lt=_day_start(filters.created_to + timedelta(days=1)))
    if filters.q.strip():
        text = filters.q.strip()
        queryset = queryset.filter(
            Q(user_message__icontains=text)
            | Q(ai_response__icontains=text)
            | Q(expected_response__icontains=text)
            | Q(feedback__icontains=text)
        )
    if filters.due:
        queryset = queryset.filter(review_by__lte=timezone.localdate(), retired_at__isnull=True)
    if filters.retired is True:
        queryset = queryset.filter(retired_at__isnull=False)
    elif filters.retired is False:
        queryset = queryset.filter(retired_at__isnull=True)
    return queryset


def review_queue(*, filters: ExampleFilters) -> QuerySet[TrainingExample]:
    """Pending first (when other statuses are shown), then oldest first, so nothing waits forever.

    On PostgreSQL the expression index training_review_order_idx (training/0007) holds exactly this order
    (the CASE below, created_at, id), so a page is an index scan, not a sort of every example.
    """
    pending_first = Case(
        When(status=ExampleStatus.PENDING, then=Value(0)), default=Value(1), output_field=IntegerField()
    )
    return (
        examples_filtered(filters=filters)
        .select_related("message")
        .annotate(pending_first=pending_first)
        .order_by("pending_first", "created_at", "id")
    )


def library_examples(*, filters: ExampleFilters) -> QuerySet[TrainingExample]:
    """Newest decision first. The use count is a subquery per row of the page (not a GROUP BY over every
    example), so PostgreSQL walks training_library_order_idx (training/0007) and stops after a page."""
    uses = (
        ExampleUse.objects.filter(example_id=OuterRef("pk"))
        .order_by()
        .values("example_id")
        .annotate(n=Count("*"))
        .values("n")
    )
    return (
        examples_filtered(filters=filters)
        .annotate(use_count=Coalesce(Subquery(uses, output_field=IntegerField()), 0))
        .order_by(f"-{DECIDED_AT}", "-created_at", "-id")
    )


def review_progress(*, days: int = 7) -> list[dict[str, Any]]:
    """Per reviewer: approved and rejected in the last `days` days and today, in one grouped query."""
    since = timezone.now() - timedelta(days=days)
    today = _day_start(timezone.localdate())
    rows = (
        TrainingExample.objects.filter(**{f"{DECIDED_AT}__gte": since, f"{DECIDED_BY}__isnull": False})
        .values(f"{DECIDED_BY}__id", f"{DECIDED_BY}__username", f"{DECIDED_BY}__first_name")
        .annotate(
            approved=Count("id", filter=Q(status=ExampleStatus.APPROVED)),
            rejected=Count("id", filter=Q(status=ExampleStatus.REJECTED)),
            today=Count("id", filter=Q(**{f"{DECIDED_AT}__gte": today})),
        )
        .order_by("-approved", f"{DECIDED_BY}__username")
    )
    return [
        {
            "name": row[f"{DECIDED_BY}__first_name"] or row[f"{DECIDED_BY}__username"],
            "approved": row["approved"],
            "rejected": row["rejected"],
            "today": row["today"],
            "total": row["approved"] + row["rejected"],
        }
        for row in rows
    ]


# --- Similar examples ------------------------------------------------------------------------------------


def _desired(example: Any) -> str:
    if example.example_type == ExampleType.CORRECTION:
        return example.expected_response
    if example.example_type == ExampleType.GOOD:
        return example.ai_response
    return ""


def _avoided(example: Any) -> str:
    return example.ai_response if example.example_type != ExampleType.GOOD else ""


@dataclass
class Similar:
    example_id: int
    kind: str  # "conflict" or "duplicate"
    similarity: float
    reason: str
    example: TrainingExample | None = field(default=None, repr=False)

    def as_json(self) -> dict[str, Any]:
        return {
            "id": self.example_id,
            "kind": self.kind,
            "similarity": self.similarity,
            "reason": self.reason,
        }


def compare(*, example: Any, other: TrainingExample, similarity: float) -> Similar:
    """Same question: a conflict when the answers disagree, else a near-duplicate."""
    mine, theirs = _desired(example), _desired(other)
    if mine and theirs and trigram_similarity(mine, theirs) < DIFFERENT_ANSWER:
        reason = f"Same question, a different expected answer in #{other.pk}."
        return Similar(other.pk, "conflict", similarity, reason, other)
    if mine and _avoided(other) and trigram_similarity(mine, _avoided(other)) >= 1 - DIFFERENT_ANSWER:
        reason = f"#{other.pk} says to avoid the answer this one expects."
        return Similar(other.pk, "conflict", similarity, reason, other)
    if theirs and _avoided(example) and trigram_similarity(theirs, _avoided(example)) >= 1 - DIFFERENT_ANSWER:
        reason = f"#{other.pk} expects the answer this one says to avoid."
        return Similar(other.pk, "conflict", similarity, reason, other)
    return Similar(other.pk, "duplicate", similarity, f"Near-duplicate of #{other.pk}.", other)


def example_similar_approved(*, example: Any, exclude_id: int | None = None) -> list[Similar]:
    """Approved live examples asking the same (or nearly the same) thing; conflicts first.

    Candidates come from the agent's own retrieval (embeddings, full text or word stems), then trigram
    similarity of the lead messages decides; a very high embedding cosine counts too.
    """
    excluded = (exclude_id,) if exclude_id else ()
    ranked = examples_rank(text=example.user_message, limit=SIMILAR_CANDIDATES, exclude_ids=excluded)
    if not ranked:
        return []
    others = TrainingExample.objects.filter(
        pk__in=[r.example_id for r in ranked], status=ExampleStatus.APPROVED, retired_at__isnull=True
    ).in_bulk()
    found = []
    for r in ranked:
        other = others.get(r.example_id)
        if other is None:
            continue
        similarity = trigram_similarity(example.user_message, other.user_message)
        if similarity < NEAR_DUPLICATE and not (r.method == "embedding" and r.score >= NEAR_DUPLICATE_COSINE):
            continue
        found.append(compare(example=example, other=other, similarity=round(max(similarity, 0.0), 3)))
    found.sort(key=lambda s: (s.kind != "conflict", -s.similarity))
    return found[:MAX_SIMILAR]


def similar_stored(*, examples: list[TrainingExample]) -> dict[int, list[Similar]]:
    """The similar examples recorded at submission (metadata["similar"]) for a page, read in one query."""
    wanted: dict[int, list[dict[str, Any]]] = {}
    for example in examples:
        items = example.metadata.get("similar") if isinstance(example.metadata, dict) else None
        if isinstance(items, list):
            wanted[example.pk] = [i for i in items if isinstance(i, dict) and isinstance(i.get("id"), int)]
    ids = {item["id"] for items in wanted.values() for item in items}
    if not ids:
        return {}
    others = (
        TrainingExample.objects.filter(pk__in=ids)
        .only(
            "id", "status", "example_type", "user_message", "ai_response", "expected_response", "retired_at"
        )
        .in_bulk()
    )
    result: dict[int, list[Similar]] = {}
    for example_id, items in wanted.items():
        result[example_id] = [
            Similar(
                item["id"],
                str(item.get("kind", "duplicate")),
                float(item.get("similarity", 0)),
                str(item.get("reason", "")),
                others[item["id"]],
            )
            for item in items
            if item["id"] in others
        ]
    return result


def pending_groups(*, examples: list[TrainingExample]) -> dict[int, int]:
    """Group similar pending examples on a page (same type, alike lead messages): example id -> group id
    (the group's first example); examples alone in their group are left out."""
    pending = [e for e in examples if e.status == ExampleStatus.PENDING]
    parent = {e.pk: e.pk for e in pending}

    def root(pk: int) -> int:
        while parent[pk] != pk:
            parent[pk] = parent[parent[pk]]
            pk = parent[pk]
        return pk

    for i, left in enumerate(pending):
        for right in pending[i + 1 :]:
            if left.example_type != right.example_type:
                continue
            if trigram_similarity(left.user_message, right.user_message) >= NEAR_DUPLICATE:
                a, b = root(left.pk), root(right.pk)
                if a != b:
                    parent[max(a, b)] = min(a, b)
    groups = {pk: root(pk) for pk in parent}
    sizes: dict[int, int] = {}
    for group in groups.values():
        sizes[group] = sizes.get(group, 0) + 1
    return {pk: group for pk, group in groups.items() if sizes[group] > 1}


# --- One example's page --------------------------------------------------------------------------------


def example_detail(*, example_id: int) -> TrainingExample | None:
    return (
        TrainingExample.objects.select_related("submitted_by", DECIDED_BY, "conversation__lead", "message")
        .annotate(use_count=Count("uses"))
        .filter(pk=example_id)
        .first()
    )


def example_history(*, example_id: int, limit: int = 50) -> list[Activity]:
    """Submitted, edited, decided, reopened, retired...: the activities that name this example."""
    return list(
        Activity.objects.filter(verb__startswith="training.", data__example_id=example_id)
        .select_related("actor")
        .order_by("created_at", "id")[:limit]
    )


def example_recent_uses(*, example_id: int, limit: int = 10) -> list[ExampleUse]:
    return list(
        ExampleUse.objects.filter(example_id=example_id)
        .select_related("message__conversation__lead")
        .order_by("-created_at", "-id")[:limit]
    )


def message_example_uses(*, message_ids: list[int]) -> dict[int, list[ExampleUse]]:
    """For a transcript: which examples each agent reply was written with (rank, score), in one query."""
    uses: dict[int, list[ExampleUse]] = {}
    rows = (
        ExampleUse.objects.filter(message_id__in=message_ids)
        .select_related("example")
        .only(
            "id",
            "message_id",
            "rank",
            "score",
            "method",
            "example__id",
            "example__example_type",
            "example__user_message",
        )
        .order_by("message_id", "rank")
    )
    for use in rows:
        uses.setdefault(use.message_id, []).append(use)
    return uses


def examples_due(*, limit: int = 50) -> QuerySet[TrainingExample]:
    return examples_filtered(filters=ExampleFilters(status=ExampleStatus.APPROVED, due=True)).order_by(
        "review_by", "id"
    )[:limit]
