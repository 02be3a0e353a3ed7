"""Insights over training and the agent: every figure is one SQL aggregate, so the query count is fixed.

A date range is [start, end], both days inclusive, in the project's time zone. Examples count by the day
they were submitted, decisions by the day they were made. An optional prompt version narrows every figure
to that version's work: examples flagged on its replies, conversations it answered, and the leads (and
their handoffs) of those conversations.

The example figures come from the daily rollups (training/insights/models.py, kept exact by triggers) when
they cover the request: PostgreSQL, rollups built in the request's time zone, no version filter. Otherwise,
and always for the figures no rollup holds, from the base tables. Both paths give the same numbers
(tests/training/test_insights_rollups.py compares them on random ranges).
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
    Sum,
    Window,
)
from django.db.models.fields.json import KT
from django.db.models.functions import Coalesce, Lower, RowNumber, Substr, Trim, TruncDay
from django.utils import timezone

from leads.models import Activity, Lead, LeadStatus, Message
from prompts.funnel.selectors import VersionFunnel, funnel_per_version
from prompts.models import PromptVersion, PromptVersionConversation
from prompts.selectors import wilson_interval
from training.insights.models import (
    InsightsDecisionDay,
    InsightsExampleDay,
    InsightsFeedbackDay,
    InsightsFlaggedDay,
    InsightsRollupState,
)
from training.models import ExampleStatus, ExampleType, TrainingExample

# The verbs recorded when a lead is handed to a person, each with data {"reason": ...}: the model asked for
# a human (leads.services.lead_flag_for_human's default), or the agent could not answer or deliver.
HANDOFF_VERB = "lead.handed_off"
HANDOFF_VERBS = (HANDOFF_VERB, "agent.needs_human")
FUNNEL_STAGES = (
    LeadStatus.NEW,
    LeadStatus.ENGAGED,
    LeadStatus.QUALIFIED,
    LeadStatus.BOOKED,
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


# Past 90 days the per-day series are summed by week: a year reads as 53 bars, not 365.
WEEKLY_AFTER_DAYS = 90


def insights_bucket_for(*, f: InsightsFilter) -> str:
    return "week" if len(f.days) > WEEKLY_AFTER_DAYS else "day"


def insights_series_by_bucket(series: list[dict[str, Any]], *, bucket: str) -> list[dict[str, Any]]:
    """Sum a per-day series (rows with an ISO "day" and counts) into weeks starting on Monday; each row keeps
    the first day of its week within the range as its "day" (the first and last weeks may be partial)."""
    if bucket != "week":
        return series
    weeks: dict[dt.date, dict[str, Any]] = {}
    for row in series:
        day = dt.date.fromisoformat(row["day"])
        monday = day - dt.timedelta(days=day.weekday())
        week = weeks.setdefault(monday, {"day": row["day"]})
        for key, value in row.items():
            if key != "day":
                week[key] = week.get(key, 0) + value
    return list(weeks.values())


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


def insights_rollups_cover(*, f: InsightsFilter) -> bool:
    """Whether the rollups can answer for this filter (one indexed read of the state row)."""
    if connection.vendor != "postgresql" or f.prompt_version_id is not None:
        return False
    built_in = InsightsRollupState.objects.filter(pk=1).values_list("time_zone", flat=True).first()
    return built_in is not None and built_in == timezone.get_current_timezone_name()


def _days(model: Any, f: InsightsFilter) -> QuerySet:
    return model.objects.filter(day__gte=f.start, day__lte=f.end)


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


def _submitted_by_day(*, f: InsightsFilter, rollups: bool = False) -> dict[dt.date, dict[str, int]]:
    """Examples submitted per day and per (status, type): one scan feeds both the series and the totals."""
    if rollups:
        sums = {
            f"{status}__{kind}": Coalesce(Sum("n", filter=Q(status=status, example_type=kind)), 0)
            for status in ExampleStatus.values
            for kind in ExampleType.values
        }
        found = _days(InsightsExampleDay, f).values("day").annotate(**sums).order_by("day")
        return {row.pop("day"): row for row in found}
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


def insights_decisions_per_day(*, f: InsightsFilter, rollups: bool = False) -> list[dict[str, Any]]:
    if rollups:
        summed = (
            _days(InsightsDecisionDay, f)
            .values("day")
            .annotate(
                approved=Coalesce(Sum("n", filter=Q(status=ExampleStatus.APPROVED)), 0),
                rejected=Coalesce(Sum("n", filter=Q(status=ExampleStatus.REJECTED)), 0),
            )
            .order_by("day")
        )
        by_day = {row.pop("day"): row for row in summed}
        return [{"day": day.isoformat(), **by_day.get(day, {"approved": 0, "rejected": 0})} for day in f.days]
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


def insights_review_time(*, f: InsightsFilter, decided: int | None = None) -> dict[str, Any]:
    """Median time from submission to decision over the decisions made in the range.

    With `decided` (the count, from the rollups) the median is the middle one or two waits in order, read
    from the expression index idx_training_review_wait: one bounded query, no sort of the range.
    """
    waited = ExpressionWrapper(F("decided_at") - F("created_at"), output_field=DurationField())
    if decided is not None:
        if not decided:
            return {"decided": 0, "median_seconds": None}
        first = (decided - 1) // 2
        middle = list(
            _decided(f)
            .annotate(waited=waited)
            .order_by("waited")
            .values_list("waited", flat=True)[first : first + 2 - decided % 2]
        )
        low, high = middle[0], middle[-1]
        return {"decided": decided, "median_seconds": _seconds(low + (high - low) / 2)}
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


def _top_people(
    rows, *, user: str, count_key: str, counted: str, limit: int, summed: bool = False
) -> list[dict[str, Any]]:
    """Per-user totals with approved/rejected splits; `user` is the FK name, `counted` a non-null column.
    `summed`: the rows are rollup rows whose counts are in `n`."""
    if summed:
        totals: dict[str, Any] = {
            count_key: Sum("n"),
            "approved": Coalesce(Sum("n", filter=Q(status=ExampleStatus.APPROVED)), 0),
            "rejected": Coalesce(Sum("n", filter=Q(status=ExampleStatus.REJECTED)), 0),
        }
    else:
        totals = {
            count_key: Count("*"),
            "approved": Count(counted, filter=Q(status=ExampleStatus.APPROVED)),
            "rejected": Count(counted, filter=Q(status=ExampleStatus.REJECTED)),
        }
    grouped = (
        rows.filter(**{f"{user}__isnull": False})
        .values(f"{user}_id", f"{user}__first_name", f"{user}__last_name", f"{user}__username")
        .annotate(**totals)
    )
    if summed:  # a rollup row can be down to 0 after deletions; the base table has no such group
        grouped = grouped.filter(**{f"{count_key}__gt": 0})
    rows = grouped.order_by(f"-{count_key}", f"{user}__username")[:limit]
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


def insights_top_submitters(
    *, f: InsightsFilter, limit: int = TOP_LIMIT, rollups: bool = False
) -> list[dict[str, Any]]:
    if rollups:
        return _top_people(
            _days(InsightsExampleDay, f),
            user="submitted_by",
            count_key="submitted",
            counted="n",
            limit=limit,
            summed=True,
        )
    return _top_people(
        _submitted(f), user="submitted_by", count_key="submitted", counted="created_at", limit=limit
    )


def insights_top_reviewers(
    *, f: InsightsFilter, limit: int = TOP_LIMIT, rollups: bool = False
) -> list[dict[str, Any]]:
    if rollups:
        return _top_people(
            _days(InsightsDecisionDay, f),
            user="decided_by",
            count_key="reviewed",
            counted="n",
            limit=limit,
            summed=True,
        )
    return _top_people(
        _decided(f), user="decided_by", count_key="reviewed", counted="decided_at", limit=limit
    )


def insights_top_feedback(
    *, f: InsightsFilter, limit: int = TOP_LIMIT, rollups: bool = False
) -> list[dict[str, Any]]:
    """The most frequent feedback of bad and correction examples, compared without case or edge spaces."""
    if rollups:
        rows = (
            _days(InsightsFeedbackDay, f)
            .values("phrase")
            .annotate(
                total=Sum("n"),
                bad=Coalesce(Sum("n", filter=Q(example_type=ExampleType.BAD)), 0),
                correction=Coalesce(Sum("n", filter=Q(example_type=ExampleType.CORRECTION)), 0),
            )
            .filter(total__gt=0)
            .order_by("-total", "phrase")[:limit]
        )
        return [
            {"phrase": r["phrase"], "count": r["total"], "bad": r["bad"], "correction": r["correction"]}
            for r in rows
        ]
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


def _flagged_counts_from_rollup(*, f: InsightsFilter, limit: int) -> list[tuple[int, int]]:
    """(message id, flags in the range), most first then newest, from the daily rollup in two bounded reads.

    A reply flagged once in all (message_total = 1) counts 1 in any range that holds its day, so among those
    only the newest `limit` can place: read from a partial index in message order. The few replies flagged
    more than once are summed over the range. The merge orders the same way as the base-table query.
    """
    days = _days(InsightsFlaggedDay, f)
    single = list(
        days.filter(message_total=1, n=1).order_by("-message_id").values_list("message_id", "n")[:limit]
    )
    multiple = list(
        days.filter(message_total__gt=1)
        .values_list("message_id")
        .annotate(total=Sum("n"))
        .filter(total__gt=0)
        .order_by("-total", "-message_id")
    )
    return sorted(single + multiple, key=lambda row: (-row[1], -row[0]))[:limit]


def insights_top_flagged_replies(
    *, f: InsightsFilter, limit: int = TOP_LIMIT, rollups: bool = False
) -> list[dict[str, Any]]:
    """The agent replies flagged bad or corrected most often: two queries, the counts (from the rollup or
    the covering index), then the text and version of the few replies kept."""
    if rollups:
        counts = _flagged_counts_from_rollup(f=f, limit=limit)
    else:
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


def insights_version_funnels(*, f: InsightsFilter) -> list[VersionFunnel]:
    """The funnel of each version over the conversations it first answered in the range (two queries)."""
    return funnel_per_version(
        version_ids=[f.prompt_version_id] if f.prompt_version_id is not None else None,
        since=f.since,
        until=f.until,
    )


def insights_prompt_versions_from(*, funnels: list[VersionFunnel]) -> list[dict[str, Any]]:
    """The per-version success rates (qualification) read off the funnels, as insights_prompt_versions."""
    result = []
    for funnel in funnels:
        qualified = next(s for s in funnel.steps if s.step == "qualified")
        interval = qualified.interval
        result.append(
            {
                "prompt_version_id": funnel.prompt_version_id,
                "version": funnel.version,
                "conversations": funnel.conversations,
                "qualified": qualified.count,
                "success_rate": qualified.rate,
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


def training_insights(*, f: InsightsFilter, bucket: str = "day") -> dict[str, Any]:
    """Every figure for the range: a fixed number of queries, whatever the amount of data. `bucket` "week"
    sums the per-day series by week (insights_bucket_for picks it for long ranges)."""
    rollups = insights_rollups_cover(f=f)
    by_day = _submitted_by_day(f=f, rollups=rollups)
    decisions = insights_decisions_per_day(f=f, rollups=rollups)
    decided = sum(d["approved"] + d["rejected"] for d in decisions) if rollups else None
    funnels = insights_version_funnels(f=f)
    return {
        "range": {
            "start": f.start.isoformat(),
            "end": f.end.isoformat(),
            "prompt_version": f.prompt_version_id,
        },
        "examples": insights_example_totals(by_day=by_day),
        "submissions_per_day": insights_series_by_bucket(
            insights_submissions_per_day(f=f, by_day=by_day), bucket=bucket
        ),
        "decisions_per_day": insights_series_by_bucket(decisions, bucket=bucket),
        "review_time": insights_review_time(f=f, decided=decided),
        "top_submitters": insights_top_submitters(f=f, rollups=rollups),
        "top_reviewers": insights_top_reviewers(f=f, rollups=rollups),
        "top_feedback": insights_top_feedback(f=f, rollups=rollups),
        "top_flagged_replies": insights_top_flagged_replies(f=f, rollups=rollups),
        "prompt_versions": insights_prompt_versions_from(funnels=funnels),
        "funnel": [funnel.as_dict() for funnel in funnels],
        "lead_funnel": insights_lead_funnel(f=f),
        "handoffs": insights_handoffs(f=f),
    }
