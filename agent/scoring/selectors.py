"""Reads for scoring: the idle conversations due a score, and pass rates per check and per version."""

from collections import defaultdict
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from django.conf import settings
from django.db.models import Count, Exists, OuterRef, Q, Subquery
from django.db.models.functions import TruncDay

from agent.scoring.models import ConversationScore, ScoreCheck, ScoreStatus
from leads.models import Conversation, Message
from prompts.selectors import wilson_interval


def scoring_due(*, now: datetime, limit: int) -> list[tuple[int, int]]:
    """(conversation id, last message id) of conversations idle SCORING_IDLE_HOURS and not scored through
    that message. Reached through the leads active in the lookback (lead_last_message_idx), not a scan."""
    idle_since = now - timedelta(hours=settings.SCORING_IDLE_HOURS)
    oldest = now - timedelta(days=settings.SCORING_LOOKBACK_DAYS)
    last = (
        Message.objects.filter(conversation_id=OuterRef("pk")).order_by("-created_at", "-id").values("id")[:1]
    )
    rows = (
        Conversation.objects.filter(
            lead__last_message_at__gt=oldest,
            lead__last_message_at__lte=idle_since,
            last_message_at__gt=oldest,
            last_message_at__lte=idle_since,
        )
        .annotate(last_id=Subquery(last))
        .filter(last_id__isnull=False)
        .annotate(
            done=Exists(
                ConversationScore.objects.filter(
                    conversation_id=OuterRef("pk"), through_message_id=OuterRef("last_id")
                )
            )
        )
        .filter(done=False)
        .order_by("last_message_at")
        .values_list("pk", "last_id")[:limit]
    )
    return list(rows)


@dataclass(frozen=True)
class PassRate:
    key: str
    passed: int
    judged: int  # verdicts (a check that needs a person is left out)

    @property
    def rate(self) -> float | None:
        return self.passed / self.judged if self.judged else None

    @property
    def interval(self) -> tuple[float, float] | None:
        return wilson_interval(successes=self.passed, trials=self.judged)


@dataclass(frozen=True)
class ScoringFigures:
    conversations: int
    passed: int
    per_check: list[PassRate]
    per_version: list[PassRate]
    days: list[str]
    # per check name: the day's pass rate (None on a day without a verdict), for the chart
    series: dict[str, list[float | None]]
    # per version ("v3"): the day's share of conversations that passed every check
    version_series: dict[str, list[float | None]]


def scoring_figures(*, days: int = 30, today: date | None = None) -> ScoringFigures:
    """Pass rates per check, per version and per day; every figure from one grouped query each."""
    from django.utils import timezone

    today = today or timezone.localdate()
    start = timezone.make_aware(datetime.combine(today - timedelta(days=days - 1), datetime.min.time()))
    scores = ConversationScore.objects.filter(status=ScoreStatus.SCORED, created_at__gte=start)
    total = scores.aggregate(n=Count("id"), ok=Count("id", filter=Q(passed=True)))
    checks = ScoreCheck.objects.filter(created_at__gte=start, passed__isnull=False)
    per_check = [
        PassRate(key=row["name"], passed=row["ok"], judged=row["n"])
        for row in checks.values("name")
        .annotate(n=Count("id"), ok=Count("id", filter=Q(passed=True)))
        .order_by("name")
    ]
    per_version = [
        PassRate(
            key=f"v{row['prompt_version__version']}" if row["prompt_version__version"] else "no version",
            passed=row["ok"],
            judged=row["n"],
        )
        for row in scores.filter(passed__isnull=False)
        .values("prompt_version__version")
        .annotate(n=Count("id"), ok=Count("id", filter=Q(passed=True)))
        .order_by("-prompt_version__version")
    ]
    day_list = [(today - timedelta(days=days - 1 - i)) for i in range(days)]
    by_day: dict[str, dict[date, float]] = defaultdict(dict)
    for row in (
        checks.annotate(day=TruncDay("created_at"))
        .values("name", "day")
        .annotate(n=Count("id"), ok=Count("id", filter=Q(passed=True)))
    ):
        day = row["day"].date() if isinstance(row["day"], datetime) else row["day"]
        by_day[row["name"]][day] = row["ok"] / row["n"]
    series = {name: [values.get(d) for d in day_list] for name, values in sorted(by_day.items())}
    by_version: dict[str, dict[date, float]] = defaultdict(dict)
    for vrow in (
        scores.filter(passed__isnull=False)
        .annotate(day=TruncDay("created_at"))
        .values("prompt_version__version", "day")
        .annotate(n=Count("id"), ok=Count("id", filter=Q(passed=True)))
    ):
        day = vrow["day"].date() if isinstance(vrow["day"], datetime) else vrow["day"]
        label = f"v{vrow['prompt_version__version']}" if vrow["prompt_version__version"] else "no version"
        by_version[label][day] = vrow["ok"] / vrow["n"]
    version_series = {
        label: [values.get(d) for d in day_list] for label, values in sorted(by_version.items())
    }
    return ScoringFigures(
        conversations=total["n"] or 0,
        passed=total["ok"] or 0,
        per_check=per_check,
        per_version=per_version,
        days=[d.isoformat() for d in day_list],
        series=series,
        version_series=version_series,
    )
