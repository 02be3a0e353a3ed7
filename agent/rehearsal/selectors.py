"""Rehearsal reads: a run's progress, its report (draft beside the compared version, per scenario and per
check), a play's transcript, and the release gate.

Scores: a play passes when none of its checks failed (a judged check that needs a person neither passes
nor fails it, and is counted apart). A side's score for one repeat is the share of scenarios whose play
passed in that repeat; the overall score is the mean over repeats, with its spread (min–max and standard
deviation). A scenario is *flaky* when it passed in some repeats and failed in others.
"""

import statistics
from collections import defaultdict
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.db.models import Count, Q, QuerySet, Sum

from agent.rehearsal.models import (
    PlaySide,
    RehearsalPlay,
    RehearsalRun,
    RehearsalStatus,
    Scenario,
)


def scenario_list(*, tag: str = "", include_inactive: bool = True) -> QuerySet[Scenario]:
    scenarios = Scenario.objects.select_related("source_conversation").order_by("title", "id")
    if not include_inactive:
        scenarios = scenarios.filter(is_active=True)
    if tag:
        # JSON containment is not on SQLite; tags are few and short, so match the quoted tag in the text.
        scenarios = scenarios.filter(tags__icontains=f'"{tag.lower()}"')
    return scenarios


def scenario_tags() -> list[str]:
    tags: set[str] = set()
    for values in Scenario.objects.values_list("tags", flat=True):
        tags.update(values or [])
    return sorted(tags)


def rehearsal_run_get(*, run_id: int) -> RehearsalRun | None:
    return (
        RehearsalRun.objects.select_related("version", "against_version", "created_by")
        .defer("version__content", "against_version__content")
        .filter(pk=run_id)
        .first()
    )


def rehearsal_run_list(*, version_id: int | None = None, limit: int = 20) -> list[RehearsalRun]:
    runs = RehearsalRun.objects.select_related("version", "against_version").defer(
        "version__content", "against_version__content"
    )
    if version_id is not None:
        runs = runs.filter(version_id=version_id)
    return list(runs.order_by("-created_at", "-id")[:limit])


@dataclass
class Progress:
    total: int
    done: int
    failed: int
    running: int

    @property
    def finished(self) -> int:
        return self.done + self.failed


def rehearsal_run_progress(*, run: RehearsalRun) -> Progress:
    counts = RehearsalPlay.objects.filter(run_id=run.pk).aggregate(
        done=Count("id", filter=Q(status=RehearsalStatus.DONE)),
        failed=Count("id", filter=Q(status=RehearsalStatus.FAILED)),
        running=Count("id", filter=Q(status=RehearsalStatus.RUNNING)),
    )
    return Progress(total=run.total, **counts)


# --- The report --------------------------------------------------------------------------------------


@dataclass
class PlayCell:
    id: int
    repeat: int
    passed: bool | None
    status: str
    failed: list[dict[str, Any]]  # the checks that failed: name, turn, reason
    needs_person: int
    ended: str
    turns: int


@dataclass
class ScenarioSide:
    plays: list[PlayCell] = field(default_factory=list)

    @property
    def done(self) -> list[PlayCell]:
        return [play for play in self.plays if play.status == RehearsalStatus.DONE]

    @property
    def passes(self) -> int:
        return sum(1 for play in self.done if play.passed)

    @property
    def pass_rate(self) -> float | None:
        return self.passes / len(self.done) if self.done else None

    @property
    def flaky(self) -> bool:
        return 0 < self.passes < len(self.done)


@dataclass
class ScenarioRow:
    scenario_id: int
    title: str
    tags: list[str]
    draft: ScenarioSide
    baseline: ScenarioSide | None


@dataclass
class CheckTally:
    name: str
    judged: bool
    never: bool
    passed: int = 0
    failed: int = 0
    needs_person: int = 0

    @property
    def pass_rate(self) -> float | None:
        decided = self.passed + self.failed
        return self.passed / decided if decided else None


@dataclass
class SideSummary:
    side: str
    version_number: int | None
    plays: int = 0
    passed: int = 0
    flaky: int = 0
    scores: list[float] = field(default_factory=list)  # per repeat
    asserted: dict[str, int] = field(default_factory=lambda: {"passed": 0, "failed": 0})
    judged: dict[str, int] = field(default_factory=lambda: {"passed": 0, "failed": 0, "needs_person": 0})
    never_failures: list[dict[str, Any]] = field(default_factory=list)
    checks: list[CheckTally] = field(default_factory=list)
    prompt_tokens: int = 0
    completion_tokens: int = 0
    agent_calls: int = 0
    lead_calls: int = 0
    judge_calls: int = 0
    cost_usd: Decimal | None = None

    @property
    def score(self) -> float | None:
        return statistics.fmean(self.scores) if self.scores else None

    @property
    def spread(self) -> tuple[float, float] | None:
        return (min(self.scores), max(self.scores)) if self.scores else None

    @property
    def stdev(self) -> float | None:
        return statistics.pstdev(self.scores) if len(self.scores) > 1 else (0.0 if self.scores else None)

    @property
    def tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens


@dataclass
class RehearsalReport:
    run: RehearsalRun
    progress: Progress
    rows: list[ScenarioRow]
    draft: SideSummary
    baseline: SideSummary | None
    gate: "GateResult"


def _cost(prompt_tokens: int, completion_tokens: int) -> Decimal | None:
    prices = getattr(settings, "AGENT_MODEL_PRICES", {}).get(settings.OPENAI_MODEL)
    if not prices:
        return None
    given, taken = prices
    return (Decimal(prompt_tokens) * given + Decimal(completion_tokens) * taken) / Decimal(1_000_000)


def _summarise(*, side: str, version_number: int | None, plays: list[RehearsalPlay]) -> SideSummary:
    summary = SideSummary(side=side, version_number=version_number)
    tallies: dict[str, CheckTally] = {}
    by_repeat: dict[int, list[bool]] = defaultdict(list)
    by_scenario: dict[int, list[bool]] = defaultdict(list)
    for play in plays:
        summary.prompt_tokens += play.prompt_tokens
        summary.completion_tokens += play.completion_tokens
        summary.agent_calls += play.agent_calls
        summary.lead_calls += play.lead_calls
        summary.judge_calls += play.judge_calls
        if play.status != RehearsalStatus.DONE:
            continue
        summary.plays += 1
        summary.passed += bool(play.passed)
        by_repeat[play.repeat].append(bool(play.passed))
        by_scenario[play.scenario_id].append(bool(play.passed))
        for result in play.check_results:
            tally = tallies.setdefault(
                result["name"],
                CheckTally(name=result["name"], judged=result["judged"], never=result.get("never", False)),
            )
            bucket = summary.judged if result["judged"] else summary.asserted
            if result["passed"] is None:
                tally.needs_person += 1
                bucket["needs_person"] += 1
            elif result["passed"]:
                tally.passed += 1
                bucket["passed"] += 1
            else:
                tally.failed += 1
                bucket["failed"] += 1
                if result.get("never"):
                    summary.never_failures.append(
                        {
                            "play_id": play.pk,
                            "scenario_id": play.scenario_id,
                            "repeat": play.repeat,
                            "check": result["name"],
                            "turn": result.get("turn"),
                            "reason": result["reason"],
                        }
                    )
    summary.scores = [sum(values) / len(values) for _, values in sorted(by_repeat.items())]
    summary.flaky = sum(1 for values in by_scenario.values() if 0 < sum(values) < len(values))
    summary.checks = sorted(tallies.values(), key=lambda tally: (tally.judged, tally.name))
    summary.cost_usd = _cost(summary.prompt_tokens, summary.completion_tokens)
    return summary


def _cell(play: RehearsalPlay) -> PlayCell:
    results = play.check_results or []
    return PlayCell(
        id=play.pk,
        repeat=play.repeat,
        passed=play.passed,
        status=play.status,
        failed=[
            {"name": r["name"], "turn": r.get("turn"), "reason": r["reason"]}
            for r in results
            if r["passed"] is False
        ],
        needs_person=sum(1 for r in results if r["passed"] is None),
        ended=play.ended,
        turns=play.turns,
    )


def rehearsal_report(*, run: RehearsalRun) -> RehearsalReport:
    """The whole report in two queries (the plays with their scenarios, the progress counts)."""
    plays = list(
        RehearsalPlay.objects.filter(run_id=run.pk)
        .select_related("scenario")
        .defer("transcript", "scenario__persona", "scenario__goal", "scenario__facts", "scenario__checks")
        .order_by("scenario__title", "scenario_id", "side", "repeat")
    )
    rows: dict[int, ScenarioRow] = {}
    for play in plays:
        row = rows.setdefault(
            play.scenario_id,
            ScenarioRow(
                scenario_id=play.scenario_id,
                title=play.scenario.title,
                tags=play.scenario.tags or [],
                draft=ScenarioSide(),
                baseline=ScenarioSide() if run.against_version_id else None,
            ),
        )
        side = row.draft if play.side == PlaySide.DRAFT else row.baseline
        if side is not None:
            side.plays.append(_cell(play))
    draft = _summarise(
        side=PlaySide.DRAFT,
        version_number=run.version.version,
        plays=[p for p in plays if p.side == PlaySide.DRAFT],
    )
    baseline = None
    if run.against_version_id:
        baseline = _summarise(
            side=PlaySide.BASELINE,
            version_number=run.against_version.version if run.against_version else None,
            plays=[p for p in plays if p.side == PlaySide.BASELINE],
        )
    progress = Progress(
        total=run.total,
        done=sum(1 for p in plays if p.status == RehearsalStatus.DONE),
        failed=sum(1 for p in plays if p.status == RehearsalStatus.FAILED),
        running=sum(1 for p in plays if p.status == RehearsalStatus.RUNNING),
    )
    return RehearsalReport(
        run=run,
        progress=progress,
        rows=list(rows.values()),
        draft=draft,
        baseline=baseline,
        gate=_gate(run=run, draft=draft, baseline=baseline),
    )


def rehearsal_play_get(*, play_id: int) -> RehearsalPlay | None:
    return (
        RehearsalPlay.objects.select_related("run", "scenario", "version")
        .defer("version__content")
        .filter(pk=play_id)
        .first()
    )


def play_transcript_rows(*, play: RehearsalPlay) -> list[dict[str, Any]]:
    """The transcript with each turn's failed checks beside the agent's line of that turn."""
    failed_by_turn: dict[int, list[dict[str, Any]]] = defaultdict(list)
    for result in play.check_results or []:
        if result["passed"] is False and result.get("turn"):
            failed_by_turn[result["turn"]].append(result)
    rows = []
    for line in play.transcript or []:
        row = dict(line)
        row["failed_checks"] = failed_by_turn.get(line.get("turn"), []) if line.get("role") == "agent" else []
        rows.append(row)
    return rows


def rehearsal_usage(*, run: RehearsalRun) -> dict[str, int]:
    return RehearsalPlay.objects.filter(run_id=run.pk).aggregate(
        agent_calls=Sum("agent_calls"), lead_calls=Sum("lead_calls"), judge_calls=Sum("judge_calls")
    )


# --- The release gate ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class GateResult:
    """ "Not worse than active": the draft's overall score at most `margin` below the compared version's,
    and no check marked *never* failed in any play of the draft."""

    passed: bool
    reasons: list[str]
    run_id: int | None = None
    draft_score: float | None = None
    against_score: float | None = None
    margin: float = 0.0
    never_failures: list[dict[str, Any]] = field(default_factory=list)


def _gate(
    *, run: RehearsalRun, draft: SideSummary, baseline: SideSummary | None, margin: float | None = None
) -> GateResult:
    margin = settings.REHEARSAL_GATE_MARGIN if margin is None else margin
    reasons: list[str] = []
    if run.status != RehearsalStatus.DONE:
        reasons.append(f"Rehearsal #{run.pk} has not finished ({run.get_status_display().lower()}).")
    if baseline is None:
        reasons.append("The rehearsal did not compare the draft with another version.")
    if draft.never_failures:
        first = draft.never_failures[0]
        reasons.append(
            f"A 'never' check failed in {len(draft.never_failures)} play(s), e.g. {first['check']} on turn "
            f"{first['turn']}: {first['reason']}"
        )
    draft_score = draft.score
    against_score = baseline.score if baseline is not None else None
    if draft_score is not None and against_score is not None and draft_score < against_score - margin:
        reasons.append(
            f"The draft scored {draft_score:.0%}, more than {margin:.0%} below the compared version's "
            f"{against_score:.0%}."
        )
    if draft_score is None:
        reasons.append("No play of the draft finished.")
    if baseline is not None and against_score is None:
        reasons.append("No play of the compared version finished.")
    return GateResult(
        passed=not reasons,
        reasons=reasons
        or [
            f"Not worse than v{baseline.version_number if baseline else '?'}: {draft_score:.0%} against "
            f"{against_score:.0%} (margin {margin:.0%}), no 'never' check failed."
        ],
        run_id=run.pk,
        draft_score=draft_score,
        against_score=against_score,
        margin=margin,
        never_failures=draft.never_failures,
    )


def rehearsal_gate(*, draft: Any, against: Any, margin: float | None = None) -> GateResult:
    """The release gate for `draft` against `against` (e.g. the active version), from the newest finished
    rehearsal that compared exactly those two versions. No such rehearsal: the gate is closed."""
    run = (
        RehearsalRun.objects.select_related("version", "against_version")
        .defer("version__content", "against_version__content")
        .filter(version_id=draft.pk, against_version_id=against.pk, status=RehearsalStatus.DONE)
        .order_by("-finished_at", "-id")
        .first()
    )
    if run is None:
        return GateResult(
            passed=False,
            reasons=[f"No finished rehearsal of v{draft.version} against v{against.version}."],
            margin=settings.REHEARSAL_GATE_MARGIN if margin is None else margin,
        )
    report = rehearsal_report(run=run)
    return _gate(run=run, draft=report.draft, baseline=report.baseline, margin=margin)


# --- Conversations worth rehearsing --------------------------------------------------------------------


@dataclass(frozen=True)
class ConversationPick:
    conversation: Any
    reason: str  # lost, handoff or stalled


def conversations_for_scenarios(*, since: Any, limit: int, stalled_after: Any) -> list[ConversationPick]:
    """Conversations active since `since` that went wrong: the lead was lost, handed off to a person, or
    stalled (the agent wrote last, before `stalled_after`, and the lead never answered), newest first;
    conversations already turned into a scenario are left out."""
    from django.db.models import OuterRef, Subquery

    from leads.models import Conversation, LeadStatus, Message, MessageRole

    last_role = (
        Message.objects.filter(conversation=OuterRef("pk")).order_by("-created_at", "-id").values("role")[:1]
    )
    used = Scenario.objects.filter(source_conversation__isnull=False).values("source_conversation_id")
    rows = list(
        Conversation.objects.filter(last_message_at__gte=since)
        .exclude(pk__in=used)
        .annotate(last_role=Subquery(last_role))
        .filter(
            Q(lead__status=LeadStatus.LOST)
            | Q(lead__needs_human=True)
            | Q(last_role=MessageRole.AGENT, last_message_at__lt=stalled_after)
        )
        .exclude(lead__status__in=[LeadStatus.QUALIFIED, LeadStatus.CONVERTED])
        .select_related("lead")
        .order_by("-last_message_at", "-id")[:limit]
    )
    picks = []
    for row in rows:
        if row.lead.status == LeadStatus.LOST:
            reason = "lost"
        elif row.lead.needs_human:
            reason = "handoff"
        else:
            reason = "stalled"
        picks.append(ConversationPick(conversation=row, reason=reason))
    return picks
