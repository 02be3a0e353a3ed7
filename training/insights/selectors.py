"""Insights over training and the agent: every figure is one SQL aggregate, so the query count is fixed.

A date range is [start, end], both days inclusive, in the project's time zone. Examples count by the day
they were submitted, decisions by the day they were made. An optional prompt version narrows every figure
to that version's work: examples flagged on its replies, conversations it answered, and the leads (and
their handoffs) of those conversations.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from django.db import connection
from django.db.models import (
    Aggregate,
    Count,
    DurationField,
    Exists,
    ExpressionWrapper,
    F,
    Func,
    IntegerField,
    OuterRef,
    Q,
    QuerySet,
    Window,
)
from django.db.models.fields.json import KT
from django.db.models.functions import Lower, RowNumber, Substr, Trim, TruncDay
from django.utils import timezone

from leads.models import Activity, Lead, LeadStatus, Message
from prompts.models import PromptVersion, PromptVersionConversation
from prompts.selectors import wilson_interval
from training.models import ExampleStatus, ExampleType, TrainingExample

# The verbs recorded when a lead is handed to a person, each with data {"reason": ...}: the model asked for
# a human (leads.services.lead_flag_for_human's default), or the agent could not answer or deliver.
HANDOFF_VERB = "lead.handed_off"
HANDOFF_VERBS = (HANDOFF_VERB, "agent.needs_human")
FUNNEL_STAGES = (
    LeadStatus.NEW,
    LeadStatus.ENGAGED,
    LeadStatus.QUALIFIED,
    LeadStatus.CONVERTED,
    LeadStatus.LOST,
)
DEFAULT_DAYS = 30
MAX_DAYS = 731
TOP_LIMIT = 10


@dataclass(frozen=True)
class InsightsFilter:
    start: dt.date
    end: dt.date  # inclusive
    prompt_version_id: int | None = None

    @property
    def since(self) -> dt.datetime:
        return timezone.make_aware(dt.datetime.combine(self.start, dt.time.min))

    @property
    def until(self) -> dt.datetime:
        """The first instant after the range."""
        return timezone.make_aware(dt.datetime.combine(self.end + dt.timedelta(days=1), dt.time.min))

    @property
    def days(self) -> list[dt.date]:
        return [self.start + dt.timedelta(days=i) for i in range((self.end - self.start).days + 1)]


def insights_default_range(*, today: dt.date | None = None) -> tuple[dt.date, dt.date]:
    """The last 30 days, today included."""
    today = today or timezone.localdate()
    return today - dt.timedelta(days=DEFAULT_DAYS - 1), today


class Median(Aggregate):
    """PostgreSQL's PERCENTILE_CONT(0.5), an ordered-set aggregate that also works on intervals."""

    function = "PERCENTILE_CONT"
    template = "%(function)s(0.5) WITHIN GROUP (ORDER BY %(expressions)s)"
    allow_distinct = False


class _TotalOver(Func):
    """SUM(<aggregate>) OVER (): the total over every group, on each group's row, in the same query."""

    template = "SUM(%(expressions)s) OVER ()"
    output_field = IntegerField()


def _seconds(value: Any) -> float | None:
    if value is None:
        return None
    if isinstance(value, dt.timedelta):
        return value.total_seconds()
    return float(value) / 1_000_000  # SQLite hands a duration back as microseconds


def _user_name(first: str | None, last: str | None, username: str | None) -> str:
    full = f"{first or ''} {last or ''}".strip()
    return full or (username or "")


# --- Base querysets ---------------------------------------------------------------------------------


def _submitted(f: InsightsFilter) -> QuerySet[TrainingExample]:
    qs = TrainingExample.objects.filter(created_at__gte=f.since, created_at__lt=f.until)
    if f.prompt_version_id is not None:
        qs = qs.filter(message__prompt_version_id=f.prompt_version_id)
    return qs


def _decided(f: InsightsFilter) -> QuerySet[TrainingExample]:
    qs = TrainingExample.objects.filter(
        decided_at__gte=f.since,
        decided_at__lt=f.until,
        status__in=[ExampleStatus.APPROVED, ExampleStatus.REJECTED],
    )
    if f.prompt_version_id is not None:
        qs = qs.filter(message__prompt_version_id=f.prompt_version_id)
    return qs


def _lead_answered_by(version_id: int, lead_ref: str) -> Exists:
    return Exists(
        PromptVersionConversation.objects.filter(
            prompt_version_id=version_id, conversation__lead_id=OuterRef(lead_ref)
        )
    )


# --- One query per figure ---------------------------------------------------------------------------


def _submitted_by_day(*, f: InsightsFilter) -> dict[dt.date, dict[str, int]]:
    """Examples submitted per day and per (status, type): one scan feeds both the series and the totals."""
    counts = {
        f"{status}__{kind}": Count("created_at", filter=Q(status=status, example_type=kind))
        for status in ExampleStatus.values
        for kind in ExampleType.values
    }
    rows = _submitted(f).annotate(day=TruncDay("created_at")).values("day").annotate(**counts).order_by("day")
    return {timezone.localtime(row.pop("day")).date(): row for row in rows}


def insights_example_totals(*, by_day: dict[dt.date, dict[str, int]]) -> dict[str, Any]:
    """Examples submitted in the range by status and by type, and the approval rate of those decided.

    Summed from the per-day SQL aggregate: at most one row per day of the range, whatever the data."""
    matrix = {s: dict.fromkeys(ExampleType.values, 0) for s in ExampleStatus.values}
    for row in by_day.values():
        for key, n in row.items():
            status, kind = key.split("__")
            matrix[status][kind] += n
    by_status = {s: sum(matrix[s].values()) for s in ExampleStatus.values}
    by_type = {k: sum(matrix[s][k] for s in ExampleStatus.values) for k in ExampleType.values}
    decided = by_status[ExampleStatus.APPROVED] + by_status[ExampleStatus.REJECTED]
    return {
        "total": sum(by_status.values()),
        "by_status": by_status,
        "by_type": by_type,
        "by_status_and_type": matrix,
        "decided": decided,
        "approval_rate": by_status[ExampleStatus.APPROVED] / decided if decided else None,
    }


def insights_submissions_per_day(
    *, f: InsightsFilter, by_day: dict[dt.date, dict[str, int]]
) -> list[dict[str, Any]]:
    series = []
    for day in f.days:
        row = by_day.get(day, {})
        by_type = {
            kind: sum(row.get(f"{status}__{kind}", 0) for status in ExampleStatus.values)
            for kind in ExampleType.values
        }
        series.append({"day": day.isoformat(), "total": sum(by_type.values()), **by_type})
    return series


def insights_decisions_per_day(*, f: InsightsFilter) -> list[dict[str, Any]]:
    rows = (
        _decided(f)
        .annotate(day=TruncDay("decided_at"))
        .values("day")
        .annotate(
            approved=Count("decided_at", filter=Q(status=ExampleStatus.APPROVED)),
            rejected=Count("decided_at", filter=Q(status=ExampleStatus.REJECTED)),
        )
        .order_by("day")
    )
    found = {timezone.localtime(row.pop("day")).date(): row for row in rows}
    return [{"day": day.isoformat(), **found.get(day, {"approved": 0, "rejected": 0})} for day in f.days]


def insights_review_time(*, f: InsightsFilter) -> dict[str, Any]:
    """Median time from submission to decision over the decisions made in the range."""
    waited = ExpressionWrapper(F("decided_at") - F("created_at"), output_field=DurationField())
    if connection.vendor == "postgresql":
        row = _decided(f).aggregate(decided=Count("*"), median=Median(waited, output_field=DurationField()))
        return {"decided": row["decided"], "median_seconds": _seconds(row["median"])}
    # Elsewhere: rank the waits in SQL and fetch only the one or two middle rows.
    ranked = _decided(f).annotate(
        waited=waited,
        position=Window(RowNumber(), order_by=[waited.asc(), F("id").asc()]),
        size=Window(Count("*")),
    )
    middle = list(
        ranked.filter(position__gte=(F("size") + 1) / 2, position__lte=(F("size") + 2) / 2).values_list(
            "waited", "size"
        )
    )
    if not middle:
        return {"decided": 0, "median_seconds": None}
    seconds = [_seconds(w) or 0.0 for w, _ in middle]
    return {"decided": middle[0][1], "median_seconds": sum(seconds) / len(seconds)}


def _top_people(rows, *, user: str, count_key: str, counted: str, limit: int) -> list[dict[str, Any]]:
    """Per-user totals with approved/rejected splits; `user` is the FK name, `counted` a non-null column."""
    rows = (
        rows.filter(**{f"{user}__isnull": False})
        .values(f"{user}_id", f"{user}__first_name", f"{user}__last_name", f"{user}__username")
        .annotate(
            **{count_key: Count("*")},
            approved=Count(counted, filter=Q(status=ExampleStatus.APPROVED)),
            rejected=Count(counted, filter=Q(status=ExampleStatus.REJECTED)),
        )
        .order_by(f"-{count_key}", f"{user}__username")[:limit]
    )
    return [
        {
            "user_id": r[f"{user}_id"],
            "name": _user_name(r[f"{user}__first_name"], r[f"{user}__last_name"], r[f"{user}__username"]),
            count_key: r[count_key],
            "approved": r["approved"],
            "rejected": r["rejected"],
        }
        for r in rows
    ]


def insights_top_submitters(*, f: InsightsFilter, limit: int = TOP_LIMIT) -> list[dict[str, Any]]:
    return _top_people(
        _submitted(f), user="submitted_by", count_key="submitted", counted="created_at", limit=limit
    )


def insights_top_reviewers(*, f: InsightsFilter, limit: int = TOP_LIMIT) -> list[dict[str, Any]]:
    return _top_people(
        _decided(f), user="decided_by", count_key="reviewed", counted="decided_at", limit=limit
    )


def insights_top_feedback(*, f: InsightsFilter, limit: int = TOP_LIMIT) -> list[dict[str, Any]]:
    """The most frequent feedback of bad and correction examples, compared without case or edge spaces."""
    rows = (
        _submitted(f)
        .filter(example_type__in=[ExampleType.BAD, ExampleType.CORRECTION])
        .values(phrase=Lower(Trim(Substr("feedback", 1, 200))))
        .annotate(
            n=Count("*"),
            bad=Count("created_at", filter=Q(example_type=ExampleType.BAD)),
            correction=Count("created_at", filter=Q(example_type=ExampleType.CORRECTION)),
        )
        .order_by("-n", "phrase")[:limit]
    )
    return [
        {"phrase": r["phrase"], "count": r["n"], "bad": r["bad"], "correction": r["correction"]} for r in rows
    ]


def insights_top_flagged_replies(*, f: InsightsFilter, limit: int = TOP_LIMIT) -> list[dict[str, Any]]:
    """The agent replies flagged bad or corrected most often: two queries, the counts from the covering
    index, then the text and version of the few replies kept."""
    counts = list(
        _submitted(f)
        .filter(example_type__in=[ExampleType.BAD, ExampleType.CORRECTION], message__isnull=False)
        .values_list("message_id")
        .annotate(n=Count("*"))
        .order_by("-n", "-message_id")[:limit]
    )
    replies = {
        row["id"]: row
        for row in Message.objects.filter(pk__in=[message_id for message_id, _ in counts])
        .order_by()
        .values("id", "conversation_id", "text", "prompt_version__version")
    }
    result = []
    for message_id, n in counts:
        reply = replies.get(message_id, {})
        result.append(
            {
                "message_id": message_id,
                "conversation_id": reply.get("conversation_id"),
                "text": (reply.get("text") or "")[:300],
                "prompt_version": reply.get("prompt_version__version"),
                "count": n,
            }
        )
    return result


def insights_prompt_versions(*, f: InsightsFilter) -> list[dict[str, Any]]:
    """Per version: conversations it first answered in the range, how many of them it qualified, the rate
    and its 95% Wilson interval."""
    qs = PromptVersionConversation.objects.filter(first_reply_at__gte=f.since, first_reply_at__lt=f.until)
    if f.prompt_version_id is not None:
        qs = qs.filter(prompt_version_id=f.prompt_version_id)
    rows = (
        qs.values("prompt_version_id", "prompt_version__version")
        .annotate(
            conversations=Count("*"), qualified=Count("first_reply_at", filter=Q(qualified_at__isnull=False))
        )
        .order_by("prompt_version__version")
    )
    result = []
    for r in rows:
        interval = wilson_interval(successes=r["qualified"], trials=r["conversations"])
        result.append(
            {
                "prompt_version_id": r["prompt_version_id"],
                "version": r["prompt_version__version"],
                "conversations": r["conversations"],
                "qualified": r["qualified"],
                "success_rate": r["qualified"] / r["conversations"] if r["conversations"] else None,
                "success_rate_low": interval[0] if interval else None,
                "success_rate_high": interval[1] if interval else None,
            }
        )
    return result


def insights_lead_funnel(*, f: InsightsFilter) -> list[dict[str, Any]]:
    """Leads that arrived in the range, by the stage they are at now."""
    qs = Lead.objects.filter(created_at__gte=f.since, created_at__lt=f.until)
    if f.prompt_version_id is not None:
        qs = qs.filter(_lead_answered_by(f.prompt_version_id, "pk"))
    counts = dict(qs.values("status").annotate(n=Count("*")).order_by().values_list("status", "n"))
    return [
        {"stage": stage.value, "label": stage.label, "count": counts.get(stage.value, 0)}
        for stage in FUNNEL_STAGES
    ]


def insights_handoffs(*, f: InsightsFilter, limit: int = TOP_LIMIT) -> dict[str, Any]:
    """Handoffs in the range by reason (the most frequent reasons, and the total over all of them)."""
    qs = Activity.objects.filter(verb__in=HANDOFF_VERBS, created_at__gte=f.since, created_at__lt=f.until)
    if f.prompt_version_id is not None:
        qs = qs.filter(_lead_answered_by(f.prompt_version_id, "lead_id"))
    rows = list(
        qs.values(reason=Lower(Trim(Substr(KT("data__reason"), 1, 200))))
        .annotate(n=Count("*"), total=_TotalOver(Count("*")))
        .order_by("-n", "reason")[:limit]
    )
    return {
        "total": rows[0]["total"] if rows else 0,
        "by_reason": [{"reason": r["reason"] or "(no reason given)", "count": r["n"]} for r in rows],
    }


def insights_prompt_version_choices() -> list[dict[str, Any]]:
    return list(PromptVersion.objects.order_by("-version").values("id", "version", "is_active"))


def training_insights(*, f: InsightsFilter) -> dict[str, Any]:
    """Every figure for the range: eleven queries, whatever the amount of data."""
    by_day = _submitted_by_day(f=f)
    return {
        "range": {
            "start": f.start.isoformat(),
            "end": f.end.isoformat(),
            "prompt_version": f.prompt_version_id,
        },
        "examples": insights_example_totals(by_day=by_day),
        "submissions_per_day": insights_submissions_per_day(f=f, by_day=by_day),
        "decisions_per_day": insights_decisions_per_day(f=f),
        "review_time": insights_review_time(f=f),
        "top_submitters": insights_top_submitters(f=f),
        "top_reviewers": insights_top_reviewers(f=f),
        "top_feedback": insights_top_feedback(f=f),
        "top_flagged_replies": insights_top_flagged_replies(f=f),
        "prompt_versions": insights_prompt_versions(f=f),
        "lead_funnel": insights_lead_funnel(f=f),
        "handoffs": insights_handoffs(f=f),
    }
