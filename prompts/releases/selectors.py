"""Reads for governed releases: a version's model settings, the running experiment and its statistics, what
the regression watch compares, models in use and their shutdown dates, cost per conversation."""

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.db.models import Count, Exists, OuterRef, Q, QuerySet, Sum
from django.db.models.functions import Coalesce
from django.utils import timezone

from config.metrics import price_usd
from leads.models import Activity, Conversation, Message, MessageRole
from prompts import selectors as prompt_selectors
from prompts.models import PromptVersion, PromptVersionConversation
from prompts.releases import stats
from prompts.releases.models import (
    AlertStatus,
    Arm,
    Experiment,
    ExperimentAssignment,
    ExperimentStatus,
    ModelShutdown,
    ProposalStatus,
    RegressionAlert,
    ReleaseProposal,
)
from prompts.releases.stats import ArmCounts, Metric

HANDOFF_VERBS = ("lead.handed_off",)


# --- Model settings ----------


@dataclass(frozen=True)
class ModelSettings:
    """What the model call of a version sends. `skip` holds parameters the model rejected before."""

    model: str
    temperature: float | None
    reasoning_effort: str
    max_output_tokens: int | None
    skip: frozenset[str] = field(default_factory=frozenset)
    version_id: int | None = None

    def params(self) -> dict[str, Any]:
        """The optional request parameters, minus those the model rejected before."""
        wanted: dict[str, Any] = {}
        if self.temperature is not None:
            wanted["temperature"] = self.temperature
        if self.reasoning_effort:
            wanted["reasoning_effort"] = self.reasoning_effort
        if self.max_output_tokens:
            wanted["max_completion_tokens"] = self.max_output_tokens
        return {k: v for k, v in wanted.items() if k not in self.skip}


def version_model(version: PromptVersion) -> str:
    return version.model_name or settings.OPENAI_MODEL


def version_model_settings(*, version: PromptVersion) -> ModelSettings:
    return ModelSettings(
        model=version_model(version),
        temperature=version.temperature,
        reasoning_effort=version.reasoning_effort or "",
        max_output_tokens=version.max_output_tokens,
        skip=frozenset(version.unsupported_params or []),
        version_id=version.pk,
    )


# --- Versions ----------


def active_version_for_agent() -> PromptVersion | None:
    return prompt_selectors.active_prompt_version()


def version_get(*, version_id: int) -> PromptVersion | None:
    return (
        PromptVersion.objects.select_related("author", "activated_by", "parent").filter(pk=version_id).first()
    )


def previous_version(*, active: PromptVersion | None) -> PromptVersion | None:
    """The version that was active before `active`: from its last activation's activity, else the newest
    older version that was ever active."""
    if active is None:
        return None
    activation = (
        Activity.objects.filter(verb="prompt.activated", data__version_id=active.pk)
        .order_by("-created_at", "-id")
        .first()
    )
    previous_id = (activation.data or {}).get("previous_version_id") if activation else None
    if previous_id:
        found = PromptVersion.objects.filter(pk=previous_id).first()
        if found is not None:
            return found
    return (
        PromptVersion.objects.filter(version__lt=active.version, activated_at__isnull=False)
        .order_by("-version")
        .first()
    )


# --- Proposals ----------


def proposal_list(*, status: str | None = None) -> QuerySet[ReleaseProposal]:
    queryset = ReleaseProposal.objects.select_related("version", "against", "proposed_by", "reviewer")
    if status:
        queryset = queryset.filter(status=status)
    return queryset.order_by("-created_at", "-id")


def proposal_get(*, proposal_id: int) -> ReleaseProposal | None:
    return (
        ReleaseProposal.objects.select_related("version", "against", "proposed_by", "reviewer")
        .filter(pk=proposal_id)
        .first()
    )


def proposals_pending_by_version() -> dict[int, ReleaseProposal]:
    return {p.version_id: p for p in proposal_list(status=ProposalStatus.PENDING)}


# --- Experiments ----------


def experiment_running() -> Experiment | None:
    return (
        Experiment.objects.select_related("control", "treatment", "proposal")
        .filter(status=ExperimentStatus.RUNNING)
        .first()
    )


@dataclass(frozen=True)
class ArmReport:
    arm: str
    version: PromptVersion
    conversations: int
    counts: dict[Metric, ArmCounts]
    cost_usd: Decimal | None

    @property
    def cost_per_conversation(self) -> Decimal | None:
        if self.cost_usd is None or not self.conversations:
            return None
        return self.cost_usd / self.conversations

    @property
    def cost_per_qualified(self) -> Decimal | None:
        qualified = self.counts[Metric.QUALIFICATION].successes
        if self.cost_usd is None or not qualified:
            return None
        return self.cost_usd / qualified


@dataclass(frozen=True)
class ExperimentReport:
    experiment: Experiment
    a: ArmReport
    b: ArmReport
    primary: stats.SequentialResult
    guards: dict[Metric, stats.SequentialResult]
    verdict: stats.Verdict
    more_needed: int

    @property
    def headline(self) -> str:
        lift = self.primary.lift
        if self.verdict is stats.Verdict.B_BETTER:
            return f"B is better: qualification {lift * 100:+.1f} points."
        if self.verdict is stats.Verdict.B_WORSE:
            worse = [
                m
                for m, r in self.guards.items()
                if stats.verdict_of(r, higher_is_better=False) is stats.Verdict.B_WORSE
            ]
            if worse and not (self.primary.significant and (lift or 0) < 0):
                return f"B is worse: {', '.join(str(m) for m in worse)} rate went up."
            return f"B is worse: qualification {(lift or 0) * 100:+.1f} points."
        return "Not yet: no significant difference so far."


def _experiment_counts(*, experiment: Experiment) -> dict[str, dict[str, int]]:
    """Per arm: leads assigned, and how many of them qualified, were handed off, or met a failed turn since
    their assignment. One grouped query."""
    lead = OuterRef("lead")
    since = OuterRef("assigned_at")
    rows = (
        ExperimentAssignment.objects.filter(experiment=experiment)
        .annotate(
            qualified=Exists(
                PromptVersionConversation.objects.filter(
                    conversation__lead=lead, qualified_at__isnull=False, qualified_at__gte=since
                )
            ),
            handed_off=Exists(
                Activity.objects.filter(lead=lead, verb__in=HANDOFF_VERBS, created_at__gte=since)
            ),
            failed=Exists(
                Message.objects.filter(
                    conversation__lead=lead, role=MessageRole.LEAD, created_at__gte=since
                ).exclude(error="")
            ),
        )
        .values("arm")
        .annotate(
            n=Count("pk"),
            q=Count("pk", filter=Q(qualified=True)),
            h=Count("pk", filter=Q(handed_off=True)),
            f=Count("pk", filter=Q(failed=True)),
        )
    )
    out = {arm: {"n": 0, "q": 0, "h": 0, "f": 0} for arm in Arm.values}
    for row in rows:
        out[row["arm"]] = {k: row[k] for k in ("n", "q", "h", "f")}
    return out


def _price(*, model: str, prompt_tokens: int, completion_tokens: int) -> Decimal | None:
    cost = price_usd(model=model, prompt_tokens=prompt_tokens, completion_tokens=completion_tokens)
    if cost is not None:
        return cost
    # Servers answer with a dated snapshot name ("gpt-6-luna-2026-10-01"): price it as its family.
    for name in sorted(settings.AGENT_MODEL_PRICES, key=len, reverse=True):
        if model.startswith(name):
            return price_usd(model=name, prompt_tokens=prompt_tokens, completion_tokens=completion_tokens)
    return None


def _priced(tokens_by_model: dict[str, tuple[int, int]]) -> Decimal | None:
    """The cost of these tokens; None when a model in use is not priced."""
    total = Decimal(0)
    for model, (prompt_tokens, completion_tokens) in tokens_by_model.items():
        if not prompt_tokens and not completion_tokens:
            continue
        cost = _price(model=model, prompt_tokens=prompt_tokens, completion_tokens=completion_tokens)
        if cost is None:
            return None
        total += cost
    return total


def _costs(*, version_ids: list[int], since: datetime | None = None) -> dict[int, Decimal | None]:
    """Token cost of each version's replies (one grouped query); None when a model in use is not priced."""
    queryset = Message.objects.filter(prompt_version_id__in=version_ids, role=MessageRole.AGENT)
    if since is not None:
        queryset = queryset.filter(created_at__gte=since)
    rows = queryset.values("prompt_version_id", "model").annotate(
        p=Coalesce(Sum("prompt_tokens"), 0), c=Coalesce(Sum("completion_tokens"), 0)
    )
    costs: dict[int, Decimal | None] = {pk: Decimal(0) for pk in version_ids}
    for row in rows:
        pk = row["prompt_version_id"]
        if not row["p"] and not row["c"]:
            continue
        cost = _price(model=row["model"] or "", prompt_tokens=row["p"], completion_tokens=row["c"])
        if cost is None or costs[pk] is None:
            costs[pk] = None
        else:
            costs[pk] += cost
    return costs


def experiment_report(*, experiment: Experiment) -> ExperimentReport:
    counts = _experiment_counts(experiment=experiment)
    costs = _costs(version_ids=[experiment.control_id, experiment.treatment_id], since=experiment.started_at)

    def arm(key: str, version: PromptVersion) -> ArmReport:
        c = counts[key]
        return ArmReport(
            arm=key,
            version=version,
            conversations=c["n"],
            counts={
                Metric.QUALIFICATION: ArmCounts(c["q"], c["n"]),
                Metric.HANDOFF: ArmCounts(c["h"], c["n"]),
                Metric.FAILURE: ArmCounts(c["f"], c["n"]),
            },
            cost_usd=costs.get(version.pk),
        )

    a, b = arm(Arm.A, experiment.control), arm(Arm.B, experiment.treatment)
    primary = stats.sequential_test(a=a.counts[Metric.QUALIFICATION], b=b.counts[Metric.QUALIFICATION])
    guards = {
        m: stats.sequential_test(a=a.counts[m], b=b.counts[m]) for m in (Metric.HANDOFF, Metric.FAILURE)
    }
    verdict = stats.verdict_of(primary)
    if any(stats.verdict_of(r, higher_is_better=False) is stats.Verdict.B_WORSE for r in guards.values()):
        verdict = stats.Verdict.B_WORSE
    stored = experiment.verdict
    if stored and stored != stats.Verdict.NOT_YET and verdict is stats.Verdict.NOT_YET:
        verdict = stats.Verdict(stored)  # decided at an earlier look: the decision stands
    needed = 0
    if verdict is stats.Verdict.NOT_YET:
        needed = stats.more_needed(
            a=a.counts[Metric.QUALIFICATION],
            b=b.counts[Metric.QUALIFICATION],
            share_b=experiment.share_percent / 100,
        )
    return ExperimentReport(
        experiment=experiment, a=a, b=b, primary=primary, guards=guards, verdict=verdict, more_needed=needed
    )


def experiment_history(*, limit: int = 10) -> list[Experiment]:
    return list(
        Experiment.objects.select_related("control", "treatment", "started_by", "ended_by").order_by(
            "-started_at", "-id"
        )[:limit]
    )


# --- The regression watch ----------


@dataclass(frozen=True)
class WatchedRelease:
    version: PromptVersion
    baseline_version: PromptVersion | None
    experiment: Experiment | None
    baseline: dict[Metric, ArmCounts]
    current: dict[Metric, ArmCounts]


def _window_counts(*, start: datetime, end: datetime) -> dict[Metric, ArmCounts]:
    """Conversations in which a lead wrote within [start, end), and how many of them qualified, were handed
    off or met a failed turn within it. With one version live at a time, a window is that version's."""
    conversation = OuterRef("pk")
    lead = OuterRef("lead")
    row = (
        Conversation.objects.annotate(
            spoke=Exists(
                Message.objects.filter(
                    conversation=conversation,
                    role=MessageRole.LEAD,
                    created_at__gte=start,
                    created_at__lt=end,
                )
            ),
            qualified=Exists(
                PromptVersionConversation.objects.filter(
                    conversation=conversation, qualified_at__gte=start, qualified_at__lt=end
                )
            ),
            handed_off=Exists(
                Activity.objects.filter(
                    lead=lead, verb__in=HANDOFF_VERBS, created_at__gte=start, created_at__lt=end
                )
            ),
            failed=Exists(
                Message.objects.filter(
                    conversation=conversation,
                    role=MessageRole.LEAD,
                    created_at__gte=start,
                    created_at__lt=end,
                ).exclude(error="")
            ),
        )
        .filter(spoke=True)
        .aggregate(
            n=Count("pk"),
            q=Count("pk", filter=Q(qualified=True)),
            h=Count("pk", filter=Q(handed_off=True)),
            f=Count("pk", filter=Q(failed=True)),
        )
    )
    n = row["n"] or 0
    return {
        Metric.QUALIFICATION: ArmCounts(row["q"] or 0, n),
        Metric.HANDOFF: ArmCounts(row["h"] or 0, n),
        Metric.FAILURE: ArmCounts(row["f"] or 0, n),
    }


def releases_under_watch(*, now: datetime) -> list[WatchedRelease]:
    """The active version while it is within RELEASE_WATCH_DAYS of its activation (against the previous
    version's trailing RELEASE_WATCH_BASELINE_DAYS before it), and a running experiment's B (against A)."""
    watched: list[WatchedRelease] = []
    experiment = experiment_running()
    if experiment is not None:
        report = experiment_report(experiment=experiment)
        watched.append(
            WatchedRelease(
                version=experiment.treatment,
                baseline_version=experiment.control,
                experiment=experiment,
                baseline=report.a.counts,
                current=report.b.counts,
            )
        )
    active = PromptVersion.objects.filter(is_active=True).first()
    if (
        active is not None
        and active.activated_at
        and now - active.activated_at <= timedelta(days=settings.RELEASE_WATCH_DAYS)
    ):
        previous = previous_version(active=active)
        if previous is not None:
            released = active.activated_at
            watched.append(
                WatchedRelease(
                    version=active,
                    baseline_version=previous,
                    experiment=None,
                    baseline=_window_counts(
                        start=released - timedelta(days=settings.RELEASE_WATCH_BASELINE_DAYS), end=released
                    ),
                    current=_window_counts(start=released, end=now + timedelta(seconds=1)),
                )
            )
    return watched


def alerts_open() -> list[RegressionAlert]:
    return list(
        RegressionAlert.objects.filter(status=AlertStatus.OPEN)
        .select_related("version", "baseline_version")
        .order_by("-detected_at")
    )


# --- Models in use, shutdowns ----------


_UNSET: Any = object()


def models_in_use(*, active: Any = _UNSET, experiment: Any = _UNSET) -> dict[str, list[int]]:
    """Model name -> version numbers, for the active version and the versions of a running experiment.
    Pages that already loaded the active version and the experiment pass them in."""
    if active is _UNSET:
        active = PromptVersion.objects.filter(is_active=True).only("pk", "version", "model_name").first()
    if experiment is _UNSET:
        experiment = experiment_running()
    versions = [active] if active is not None else []
    if experiment is not None:
        versions += [experiment.control, experiment.treatment]
    used: dict[str, list[int]] = {}
    for version in {v.pk: v for v in versions}.values():
        used.setdefault(version_model(version), []).append(version.version)
    return used


@dataclass(frozen=True)
class RetirementNotice:
    model: str
    shutdown_date: Any
    days_left: int
    versions: list[int]


def retirement_notices(
    *, today: Any = None, active: Any = _UNSET, experiment: Any = _UNSET
) -> list[RetirementNotice]:
    today = today or timezone.localdate()
    used = models_in_use(active=active, experiment=experiment)
    if not used:
        return []
    horizon = today + timedelta(days=settings.RELEASE_RETIREMENT_NOTICE_DAYS)
    rows = ModelShutdown.objects.filter(
        model_name__in=list(used), shutdown_date__isnull=False, shutdown_date__lte=horizon
    )
    return [
        RetirementNotice(
            model=row.model_name,
            shutdown_date=row.shutdown_date,
            days_left=(row.shutdown_date - today).days,
            versions=used[row.model_name],
        )
        for row in rows
    ]


def model_shutdowns(*, names: list[str]) -> dict[str, Any]:
    return dict(
        ModelShutdown.objects.filter(model_name__in=names, shutdown_date__isnull=False).values_list(
            "model_name", "shutdown_date"
        )
    )


# --- Cost per conversation ----------


@dataclass(frozen=True)
class VersionCost:
    total_usd: Decimal | None
    per_conversation: Decimal | None
    per_qualified: Decimal | None
    # The interval of cost per qualified conversation from the 95% Wilson interval of the qualification rate.
    per_qualified_interval: tuple[Decimal, Decimal] | None


def version_costs(*, versions: list[PromptVersion]) -> dict[int, VersionCost]:
    """Cost per conversation and per qualified conversation for versions carrying `.results` (no query:
    the results carry each version's tokens per model)."""
    costs = {v.pk: _priced(v.results.tokens_by_model) for v in versions}
    out: dict[int, VersionCost] = {}
    for v in versions:
        total = costs.get(v.pk)
        figures = v.results.all_time
        per_conv = total / figures.conversations if total is not None and figures.conversations else None
        per_q = total / figures.qualified if total is not None and figures.qualified else None
        interval = None
        ci = figures.interval
        if per_conv is not None and ci and ci[0] > 0:
            interval = (per_conv / Decimal(str(ci[1])), per_conv / Decimal(str(ci[0])))
        out[v.pk] = VersionCost(total, per_conv, per_q, interval)
    return out
