"""The funnel per prompt version: each step's rate with its 95% Wilson interval, the median time from the
lead's first message to the step, and what each outcome cost.

Read from the fact rows (prompts.models.PromptVersionConversation), one row per version and conversation it
answered; the steps on them are credited by prompts/funnel/services.py. A version's rate for a step is the
share of the conversations it answered in which it was credited with that step. "Time to a step" runs from
the conversation's start (the lead's first message) to the moment the step was reached.
"""

from __future__ import annotations

import statistics
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from django.db import connection
from django.db.models import Aggregate, Count, DurationField, ExpressionWrapper, F, Q, QuerySet

from prompts.models import FunnelStep, PromptVersionConversation
from prompts.selectors import wilson_interval

STEPS: tuple[FunnelStep, ...] = tuple(FunnelStep)
# The outcomes whose cost per lead is shown.
COST_STEPS: tuple[FunnelStep, ...] = (FunnelStep.QUALIFIED, FunnelStep.BOOKED, FunnelStep.WON)
ATTRIBUTION_RULE = (
    "A version is credited with a conversation when at least one of its replies is in it. Each step "
    "(engaged, qualified, booked, won, lost) is credited to the version whose reply came just before the "
    "lead reached it, once per conversation; a lead that skips steps (booked straight from a booking link, "
    "won without a booking) passes the earlier ones at the same moment. Rates are shares of the "
    "conversations the version answered, with 95% Wilson intervals; times run from the lead's first message."
)


class _Median(Aggregate):
    """PostgreSQL's PERCENTILE_CONT(0.5) (the mean of the two middle values for an even count)."""

    function = "PERCENTILE_CONT"
    template = "%(function)s(0.5) WITHIN GROUP (ORDER BY %(expressions)s)"
    allow_distinct = False


@dataclass(frozen=True)
class StepFigures:
    step: str
    label: str
    count: int
    conversations: int
    median_seconds: float | None

    @property
    def rate(self) -> float | None:
        return self.count / self.conversations if self.conversations else None

    @property
    def interval(self) -> tuple[float, float] | None:
        return wilson_interval(successes=self.count, trials=self.conversations)

    def as_dict(self) -> dict[str, Any]:
        low_high = self.interval
        return {
            "step": self.step,
            "label": self.label,
            "count": self.count,
            "rate": self.rate,
            "rate_low": low_high[0] if low_high else None,
            "rate_high": low_high[1] if low_high else None,
            "median_seconds": self.median_seconds,
        }


@dataclass(frozen=True)
class VersionFunnel:
    prompt_version_id: int
    version: int
    conversations: int
    steps: list[StepFigures]
    cost_usd: Decimal | None = None
    cost_per: dict[str, Decimal | None] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {
            "prompt_version_id": self.prompt_version_id,
            "version": self.version,
            "conversations": self.conversations,
            "steps": [s.as_dict() for s in self.steps],
            "cost_usd": self.cost_usd,
            "cost_per": {step: self.cost_per.get(step) for step in COST_STEPS},
        }


def _facts(
    *, version_ids: Iterable[int] | None, since: datetime | None, until: datetime | None
) -> QuerySet[PromptVersionConversation]:
    qs = PromptVersionConversation.objects.all()
    if version_ids is not None:
        qs = qs.filter(prompt_version_id__in=list(version_ids))
    if since is not None:
        qs = qs.filter(first_reply_at__gte=since)
    if until is not None:
        qs = qs.filter(first_reply_at__lt=until)
    return qs.order_by()


def _waited(step: str) -> ExpressionWrapper:
    return ExpressionWrapper(F(f"{step}_at") - F("conversation__started_at"), output_field=DurationField())


def _seconds(value: Any) -> float | None:
    if value is None:
        return None
    if isinstance(value, timedelta):
        return value.total_seconds()
    return float(value) / 1_000_000  # SQLite hands a duration back as microseconds


def _medians(qs: QuerySet[PromptVersionConversation]) -> dict[tuple[int, str], float | None]:
    """Median time to each step per version: one grouped query of ordered-set aggregates on PostgreSQL."""
    if connection.vendor == "postgresql":
        medians = {
            f"m_{step.value}": _Median(
                _waited(step.value),
                filter=Q(**{f"{step.value}_at__isnull": False}),
                output_field=DurationField(),
            )
            for step in STEPS
        }
        # Only rows that reached a step take part: most conversations reach none, and every row read here
        # is joined and sorted.
        reached = Q()
        for step in STEPS:
            reached |= Q(**{f"{step.value}_at__isnull": False})
        grouped: list[Any] = list(qs.filter(reached).values("prompt_version_id").annotate(**medians))
        return {
            (row["prompt_version_id"], step.value): _seconds(row[f"m_{step.value}"])
            for row in grouped
            for step in STEPS
        }
    # SQLite (development): the waits of the credited rows only, the median taken here.
    waits: dict[tuple[int, str], list[float]] = defaultdict(list)
    for step in STEPS:
        credited: list[tuple[int, Any]] = list(
            qs.filter(**{f"{step.value}_at__isnull": False})
            .annotate(waited=_waited(step.value))
            .values_list("prompt_version_id", "waited")
        )
        for version_id, waited in credited:
            waits[(version_id, step.value)].append(_seconds(waited) or 0.0)
    return {key: statistics.median(values) for key, values in waits.items()}


def funnel_per_version(
    *,
    version_ids: Iterable[int] | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    with_times: bool = True,
) -> list[VersionFunnel]:
    """The funnel of each version over the conversations it first answered in [since, until) (all time when
    not given), oldest version first: one grouped count query, plus one for the median times."""
    qs = _facts(version_ids=version_ids, since=since, until=until)
    counts = {
        f"n_{step.value}": Count("pk", filter=Q(**{f"{step.value}_at__isnull": False})) for step in STEPS
    }
    rows: list[Any] = list(
        qs.values("prompt_version_id", "prompt_version__version")
        .annotate(conversations=Count("pk"), **counts)
        .order_by("prompt_version__version")
    )
    medians = _medians(qs) if with_times and rows else {}
    return [
        VersionFunnel(
            prompt_version_id=row["prompt_version_id"],
            version=row["prompt_version__version"],
            conversations=row["conversations"],
            steps=[
                StepFigures(
                    step=step.value,
                    label=step.label,
                    count=row[f"n_{step.value}"],
                    conversations=row["conversations"],
                    median_seconds=medians.get((row["prompt_version_id"], step.value)),
                )
                for step in STEPS
            ],
        )
        for row in rows
    ]


def funnel_with_costs(
    *, funnels: list[VersionFunnel], costs: dict[int, Decimal | None]
) -> list[VersionFunnel]:
    """The same funnels with each version's cost and cost per qualified, booked and won lead."""
    out = []
    for funnel in funnels:
        total = costs.get(funnel.prompt_version_id)
        by_step = {s.step: s.count for s in funnel.steps}
        per = {
            step.value: (total / by_step[step] if total is not None and by_step.get(step) else None)
            for step in COST_STEPS
        }
        out.append(
            VersionFunnel(
                prompt_version_id=funnel.prompt_version_id,
                version=funnel.version,
                conversations=funnel.conversations,
                steps=funnel.steps,
                cost_usd=total,
                cost_per=per,
            )
        )
    return out


def funnel_for_versions(
    *, version_ids: list[int], costs: dict[int, Decimal | None] | None = None
) -> dict[int, VersionFunnel]:
    """All-time funnels of these versions with their costs (three queries; two when the caller already has
    the costs), for the version page and API. A version with no conversations yet gets an empty funnel."""
    from prompts.models import PromptVersion
    from prompts.releases.selectors import _costs

    funnels = {f.prompt_version_id: f for f in funnel_per_version(version_ids=version_ids)}
    numbers = dict(PromptVersion.objects.filter(pk__in=version_ids).values_list("pk", "version"))
    for pk in version_ids:
        if pk not in funnels and pk in numbers:
            funnels[pk] = VersionFunnel(
                prompt_version_id=pk,
                version=numbers[pk],
                conversations=0,
                steps=[StepFigures(s.value, s.label, 0, 0, None) for s in STEPS],
            )
    if costs is None:
        costs = _costs(version_ids=list(funnels))
    costed = funnel_with_costs(funnels=list(funnels.values()), costs=costs)
    return {f.prompt_version_id: f for f in costed}
