"""Writes for governed releases: drafts with model settings, proposal → review → approval, experiments,
emergency rollback, the regression watch and the model retirement watch.

Every step records an activity; notifications go out once the transaction commits.
"""

import logging
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

from django.conf import settings
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.dateparse import parse_date
from django.utils.module_loading import import_string

from config.errors import Conflict, NotFound
from leads import roles
from leads.selectors import users_with_permission
from leads.services import activity_record, notification_notify
from prompts import live as prompt_live
from prompts import services as prompt_services
from prompts.models import PromptVersion
from prompts.releases import selectors, stats
from prompts.releases.models import (
    AlertStatus,
    Arm,
    Experiment,
    ExperimentAssignment,
    ExperimentStatus,
    ExperimentVerdict,
    ModelShutdown,
    ProposalStatus,
    RegressionAlert,
    ReleaseProposal,
)

logger = logging.getLogger(__name__)

REASONING_EFFORTS = ("", "minimal", "low", "medium", "high")
MODEL_NAME_MAX = 100
COMMENT_MAX = 2000


def _require(user: Any, perm: str, action: str) -> None:
    if user is None or not user.has_perm(perm):
        raise PermissionDenied(f"Your role may not {action}.")


def _actor(user: Any) -> Any:
    return user if getattr(user, "is_authenticated", False) else None


def _notify_on_commit(
    *, perm: str | None, extra_user_ids: list[int], verb: str, message: str, url: str
) -> None:
    """Notify everyone holding `perm` plus the given users, after the transaction commits."""
    extra = [pk for pk in extra_user_ids if pk]

    def send() -> None:
        from django.contrib.auth import get_user_model

        recipients = list(users_with_permission(perm=perm)) if perm else []
        recipients += list(get_user_model().objects.filter(pk__in=extra, is_active=True))
        notification_notify(recipients=recipients, verb=verb, message=message, url=url)

    transaction.on_commit(send)


def _managers_and(*user_ids: int | None, verb: str, message: str, url: str) -> None:
    _notify_on_commit(
        perm=roles.PERM_ACTIVATE_PROMPT,
        extra_user_ids=[pk for pk in user_ids if pk],
        verb=verb,
        message=message,
        url=url,
    )


# --- Model settings ----------


@dataclass(frozen=True)
class ModelSettingsInput:
    model_name: str
    temperature: float | None
    reasoning_effort: str
    max_output_tokens: int | None


def _blank(value: Any) -> bool:
    return value is None or (isinstance(value, str) and not value.strip())


def model_settings_clean(
    *,
    model_name: Any = None,
    temperature: Any = None,
    reasoning_effort: Any = None,
    max_output_tokens: Any = None,
) -> ModelSettingsInput:
    """Validate model settings from a form or the API; blank values take the defaults for new versions."""
    errors: dict[str, str] = {}
    name = settings.OPENAI_MODEL if _blank(model_name) else str(model_name).strip()
    if len(name) > MODEL_NAME_MAX or any(ch.isspace() for ch in name):
        errors["model_name"] = f"A model name is one word of at most {MODEL_NAME_MAX} characters."
    temp: float | None
    if _blank(temperature):
        temp = None
    else:
        try:
            temp = float(temperature)
        except (TypeError, ValueError):
            temp = None
            errors["temperature"] = "Temperature must be a number between 0 and 2, or empty."
        else:
            if not 0 <= temp <= 2:
                errors["temperature"] = "Temperature must be between 0 and 2, or empty."
    effort = "" if reasoning_effort is None else str(reasoning_effort).strip().lower()
    if effort not in REASONING_EFFORTS:
        errors["reasoning_effort"] = "Reasoning effort is one of minimal, low, medium, high, or empty."
    tokens: int | None
    if _blank(max_output_tokens):
        tokens = None
    else:
        try:
            tokens = int(str(max_output_tokens).strip())
        except ValueError:
            tokens = None
            errors["max_output_tokens"] = "The output token limit is a whole number (at least 16), or empty."
        else:
            if not 16 <= tokens <= 128_000:
                errors["max_output_tokens"] = "The output token limit must be between 16 and 128,000."
    if errors:
        raise ValidationError(errors)
    return ModelSettingsInput(
        model_name=name, temperature=temp, reasoning_effort=effort, max_output_tokens=tokens
    )


def model_settings_defaults() -> ModelSettingsInput:
    temp = settings.RELEASE_DEFAULT_TEMPERATURE
    return ModelSettingsInput(
        model_name=settings.OPENAI_MODEL,
        temperature=temp if temp is not None and temp >= 0 else None,
        reasoning_effort=settings.RELEASE_DEFAULT_REASONING_EFFORT,
        max_output_tokens=settings.RELEASE_DEFAULT_MAX_OUTPUT_TOKENS or None,
    )


@transaction.atomic
def release_draft_create(
    *,
    content: str,
    user: Any,
    change_note: str = "",
    model: ModelSettingsInput | None = None,
    parent_id: int | None = None,
) -> PromptVersion:
    """Save text and model settings as the next version (inactive). Both are saved, or neither."""
    model = model or model_settings_defaults()
    parent = PromptVersion.objects.filter(pk=parent_id).first() if parent_id else None
    draft = prompt_services.prompt_version_create_draft(
        content=content, user=user, change_note=change_note, parent=parent
    )
    draft.model_name = model.model_name
    draft.temperature = model.temperature
    draft.reasoning_effort = model.reasoning_effort
    draft.max_output_tokens = model.max_output_tokens
    draft.save(update_fields=["model_name", "temperature", "reasoning_effort", "max_output_tokens"])
    activity_record(
        verb="prompt.draft_saved",
        actor=user,
        data={"version_id": draft.pk, "version": draft.version, "model": draft.model_name},
    )
    return draft


def release_replacement_draft(*, version: PromptVersion, model_name: str, user: Any) -> PromptVersion:
    """ "Try a replacement": the same text and settings with another model, ready to rehearse."""
    model = model_settings_clean(
        model_name=model_name,
        temperature=None,  # a replacement model may reject it; the author can set it again
        reasoning_effort=version.reasoning_effort,
        max_output_tokens=version.max_output_tokens,
    )
    return release_draft_create(
        content=version.content,
        user=user,
        change_note=f"v{version.version} on {model.model_name} instead of {selectors.version_model(version)}"[
            :500
        ],
        model=model,
        parent_id=version.pk,
    )


def version_flag_unsupported_params(*, version_id: int, params: list[str]) -> list[str]:
    """Remember parameters the model rejected, so the next call leaves them out. Safe to repeat."""
    wanted = sorted({str(p) for p in params if p})
    if not wanted:
        return []
    with transaction.atomic():
        version = (
            PromptVersion.objects.select_for_update()
            .filter(pk=version_id)
            .only("pk", "unsupported_params")
            .first()
        )
        if version is None:
            return []
        known = list(version.unsupported_params or [])
        added = [p for p in wanted if p not in known]
        if added:
            version.unsupported_params = known + added
            version.save(update_fields=["unsupported_params"])
            prompt_live.live_bump()  # the cached version object carries its parameters
            activity_record(
                verb="prompt.params_unsupported", data={"version_id": version_id, "params": added}
            )
        return added


# --- Proposal → review → approval ----------


@transaction.atomic
def proposal_create(
    *, version: PromptVersion, user: Any, change_note: str, evaluation_run_id: int | None = None
) -> ReleaseProposal:
    """Ask for a saved version to be released. The change note is required."""
    _require(user, roles.PERM_CREATE_PROMPT, "propose prompt releases")
    note = (change_note or "").strip()
    if not note:
        raise ValidationError({"change_note": "Say what changed and why: the change note is required."})
    if len(note) > prompt_services.CHANGE_NOTE_MAX_CHARS:
        raise ValidationError({"change_note": "Keep the change note under 500 characters."})
    version = PromptVersion.objects.select_for_update().filter(pk=version.pk).first()
    if version is None:
        raise NotFound("No such prompt version.")
    if version.is_active:
        raise Conflict(f"v{version.version} is already the active version.")
    if ReleaseProposal.objects.filter(version=version, status=ProposalStatus.PENDING).exists():
        raise Conflict(f"v{version.version} already has a proposal waiting for review.")
    active = PromptVersion.objects.filter(is_active=True).only("pk").first()
    try:
        with transaction.atomic():
            proposal = ReleaseProposal.objects.create(
                version=version,
                against=active,
                proposed_by=_actor(user),
                change_note=note,
                evaluation_run_id=evaluation_run_id,
            )
    except IntegrityError as exc:
        raise Conflict(f"v{version.version} already has a proposal waiting for review.") from exc
    activity_record(
        verb="release.proposed",
        actor=user,
        data={"proposal_id": proposal.pk, "version_id": version.pk, "version": version.version, "note": note},
    )
    _managers_and(
        verb="release.proposed",
        message=f"{getattr(user, 'username', 'Someone')} proposes v{version.version} for release: {note}",
        url=f"/dashboard/training/prompt/proposals/{proposal.pk}/",
    )
    return proposal


def _pending(proposal_id: int) -> ReleaseProposal:
    proposal = (
        ReleaseProposal.objects.select_for_update().select_related("version").filter(pk=proposal_id).first()
    )
    if proposal is None:
        raise NotFound("No such proposal.")
    if proposal.status != ProposalStatus.PENDING:
        raise Conflict(f"This proposal was already decided ({proposal.get_status_display().lower()}).")
    return proposal


@transaction.atomic
def proposal_send_back(*, proposal: ReleaseProposal, user: Any, comment: str) -> ReleaseProposal:
    _require(user, roles.PERM_ACTIVATE_PROMPT, "review prompt releases")
    comment = (comment or "").strip()
    if not comment:
        raise ValidationError({"comment": "Say what should change before it is released."})
    proposal = _pending(proposal.pk)
    proposal.status = ProposalStatus.CHANGES_REQUESTED
    proposal.reviewer = _actor(user)
    proposal.review_comment = comment[:COMMENT_MAX]
    proposal.decided_at = timezone.now()
    proposal.save(update_fields=["status", "reviewer", "review_comment", "decided_at"])
    activity_record(
        verb="release.sent_back",
        actor=user,
        data={"proposal_id": proposal.pk, "version": proposal.version.version, "comment": comment[:500]},
    )
    _managers_and(
        proposal.proposed_by_id,
        verb="release.sent_back",
        message=f"v{proposal.version.version} was sent back: {comment}",
        url=f"/dashboard/training/prompt/proposals/{proposal.pk}/",
    )
    return proposal


@dataclass(frozen=True)
class GateAnswer:
    """What the rehearsal says about a draft against the active version (from the rehearsal's hook)."""

    available: bool  # a finished rehearsal compared these two versions
    passed: bool
    reason: str

    @property
    def worse(self) -> bool:
        return self.available and not self.passed


def rehearsal_gate_check(*, draft: PromptVersion, against: PromptVersion | None) -> GateAnswer:
    """Ask the rehearsal (agent.rehearsal's `rehearsal_gate`, through the RELEASE_REHEARSAL_GATE_FUNCTION
    hook, since prompts may not import agent) whether the draft is worse than the version it would replace.
    The hook answers an object with `passed`, `reasons` and `run_id` (None: no finished rehearsal)."""
    if against is None:
        return GateAnswer(False, True, "There is no active version to compare with.")
    try:
        gate = import_string(settings.RELEASE_REHEARSAL_GATE_FUNCTION)
    except ImportError:
        return GateAnswer(False, False, "The rehearsal is not installed.")
    result = gate(draft=draft, against=against)
    reasons = list(getattr(result, "reasons", None) or [])
    run_id = getattr(result, "run_id", None)
    passed = bool(getattr(result, "passed", False))
    if run_id is None:
        reason = " ".join(reasons) or f"No finished rehearsal of v{draft.version} against v{against.version}."
        return GateAnswer(False, False, reason)
    reason = " ".join(reasons) or (
        f"Rehearsal #{run_id}: not worse than the active version." if passed else ""
    )
    return GateAnswer(True, passed, reason)


@transaction.atomic
def proposal_approve(
    *, proposal: ReleaseProposal, user: Any, share_percent: int = 100, comment: str = ""
) -> ReleaseProposal:
    """Approve and release: to every lead (100) or as an experiment beside the active version (1-99).

    The two-person rule (RELEASE_TWO_PERSON_RULE) refuses the author (403); the rehearsal gate
    (RELEASE_REHEARSAL_GATE) refuses while the rehearsal says "worse than active" (409, with the reason).
    """
    _require(user, roles.PERM_ACTIVATE_PROMPT, "approve prompt releases")
    try:
        share = int(share_percent)
    except (TypeError, ValueError) as exc:
        raise ValidationError({"share_percent": "The share is a whole number from 1 to 100."}) from exc
    if not 1 <= share <= 100:
        raise ValidationError({"share_percent": "The share is a whole number from 1 to 100."})
    proposal = _pending(proposal.pk)
    if settings.RELEASE_TWO_PERSON_RULE and proposal.proposed_by_id and proposal.proposed_by_id == user.pk:
        raise PermissionDenied("The two-person rule is on: someone other than the author must approve this.")
    active = PromptVersion.objects.filter(is_active=True).first()
    gate = rehearsal_gate_check(draft=proposal.version, against=active)
    if settings.RELEASE_REHEARSAL_GATE and active is not None and not gate.passed:
        if gate.worse:
            raise Conflict(
                f"The rehearsal says v{proposal.version.version} is worse than the active version: "
                f"{gate.reason}"
            )
        raise Conflict(
            f"The rehearsal gate is on and v{proposal.version.version} has no verdict yet: {gate.reason}"
        )
    if share < 100 and active is None:
        raise ValidationError(
            {"share_percent": "With no active version there is nothing to split against: use 100."}
        )
    proposal.status = ProposalStatus.APPROVED
    proposal.reviewer = _actor(user)
    proposal.review_comment = (comment or "").strip()[:COMMENT_MAX]
    proposal.decided_at = timezone.now()
    proposal.rehearsal = {
        "available": gate.available,
        "passed": gate.passed,
        "worse": gate.worse,
        "reason": gate.reason,
    }
    proposal.save(update_fields=["status", "reviewer", "review_comment", "decided_at", "rehearsal"])
    activity_record(
        verb="release.approved",
        actor=user,
        data={"proposal_id": proposal.pk, "version": proposal.version.version, "share_percent": share},
    )
    if share == 100:
        _experiment_end_running(
            user=user, status=ExperimentStatus.STOPPED, reason="A full release replaced it."
        )
        prompt_services.prompt_version_activate(version=proposal.version, user=user)
        what = "to every lead"
    else:
        experiment_start(version=proposal.version, user=user, share_percent=share, proposal=proposal)
        what = f"to {share}% of leads as an experiment"
    _managers_and(
        proposal.proposed_by_id,
        verb="release.approved",
        message=f"v{proposal.version.version} was approved and goes live {what}.",
        url="/dashboard/training/prompt/",
    )
    return proposal


# --- Experiments ----------


def _experiment_end_running(*, user: Any, status: str, reason: str) -> Experiment | None:
    running = Experiment.objects.select_for_update().filter(status=ExperimentStatus.RUNNING).first()
    if running is None:
        return None
    running.status = status
    running.ended_at = timezone.now()
    running.ended_by = _actor(user)
    running.save(update_fields=["status", "ended_at", "ended_by"])
    prompt_live.live_bump()
    activity_record(
        verb=f"release.experiment_{status}",
        actor=user,
        data={"experiment_id": running.pk, "treatment_id": running.treatment_id, "reason": reason[:500]},
    )
    return running


@transaction.atomic
def experiment_start(
    *, version: PromptVersion, user: Any, share_percent: int, proposal: ReleaseProposal | None = None
) -> Experiment:
    _require(user, roles.PERM_ACTIVATE_PROMPT, "start experiments")
    if not 1 <= int(share_percent) <= 99:
        raise ValidationError({"share_percent": "An experiment's share is from 1 to 99 percent."})
    active = PromptVersion.objects.filter(is_active=True).first()
    if active is None:
        raise Conflict("An experiment needs an active version to compare with.")
    if active.pk == version.pk:
        raise Conflict(f"v{version.version} is already active.")
    if Experiment.objects.filter(status=ExperimentStatus.RUNNING).exists():
        raise Conflict("An experiment is already running: promote or stop it first.")
    try:
        with transaction.atomic():
            experiment = Experiment.objects.create(
                control=active,
                treatment=version,
                proposal=proposal,
                share_percent=int(share_percent),
                started_by=_actor(user),
            )
    except IntegrityError as exc:
        raise Conflict("An experiment is already running: promote or stop it first.") from exc
    prompt_live.live_bump()
    activity_record(
        verb="release.experiment_started",
        actor=user,
        data={
            "experiment_id": experiment.pk,
            "control": active.version,
            "treatment": version.version,
            "share_percent": experiment.share_percent,
        },
    )
    return experiment


def _running(experiment_id: int) -> Experiment:
    experiment = (
        Experiment.objects.select_for_update()
        .select_related("treatment", "control")
        .filter(pk=experiment_id)
        .first()
    )
    if experiment is None:
        raise NotFound("No such experiment.")
    if experiment.status != ExperimentStatus.RUNNING:
        raise Conflict(f"This experiment has ended ({experiment.status}).")
    return experiment


@transaction.atomic
def experiment_promote(*, experiment: Experiment, user: Any) -> Experiment:
    """One click: B answers every lead from now on."""
    _require(user, roles.PERM_ACTIVATE_PROMPT, "promote experiments")
    experiment = _running(experiment.pk)
    experiment.status = ExperimentStatus.PROMOTED
    experiment.ended_at = timezone.now()
    experiment.ended_by = _actor(user)
    experiment.save(update_fields=["status", "ended_at", "ended_by"])
    prompt_live.live_bump()
    prompt_services.prompt_version_activate(version=experiment.treatment, user=user)
    activity_record(
        verb="release.experiment_promoted",
        actor=user,
        data={"experiment_id": experiment.pk, "version": experiment.treatment.version},
    )
    author = experiment.proposal.proposed_by_id if experiment.proposal_id else None
    _managers_and(
        author,
        verb="release.experiment_promoted",
        message=f"v{experiment.treatment.version} was promoted to every lead.",
        url="/dashboard/training/prompt/",
    )
    return experiment


@transaction.atomic
def experiment_stop(*, experiment: Experiment, user: Any, reason: str = "") -> Experiment:
    """One click: every lead goes back to the active version (A)."""
    _require(user, roles.PERM_ACTIVATE_PROMPT, "stop experiments")
    experiment = _running(experiment.pk)
    experiment.status = ExperimentStatus.STOPPED
    experiment.ended_at = timezone.now()
    experiment.ended_by = _actor(user)
    experiment.save(update_fields=["status", "ended_at", "ended_by"])
    prompt_live.live_bump()
    activity_record(
        verb="release.experiment_stopped",
        actor=user,
        data={
            "experiment_id": experiment.pk,
            "version": experiment.treatment.version,
            "reason": reason[:500],
        },
    )
    author = experiment.proposal.proposed_by_id if experiment.proposal_id else None
    _managers_and(
        author,
        verb="release.experiment_stopped",
        message=f"The experiment with v{experiment.treatment.version} was stopped. {reason}".strip(),
        url="/dashboard/training/prompt/",
    )
    return experiment


def _live_read() -> prompt_live.LiveRelease:
    experiment = selectors.experiment_running()
    active = None if experiment is not None else selectors.active_version_for_agent()
    return prompt_live.LiveRelease(experiment=experiment, active=active)


def _live() -> tuple[Experiment | None, PromptVersion | None]:
    """The running experiment, else the active version: kept briefly in process (prompts/live.py)."""
    live = prompt_live.live_release(read=_live_read)
    return live.experiment, live.active


def release_version_for_lead(*, lead_id: int | None, lead_key: str) -> PromptVersion | None:
    """The version that answers this lead: the active one, or, while an experiment runs, the arm the lead's
    hash puts it in (sticky: the same on every worker and after a restart). The agent's turn calls this."""
    experiment, active = _live()
    if experiment is None:
        return active
    arm = (
        Arm.B
        if stats.in_treatment(
            lead_key=lead_key, experiment_key=experiment.hash_key, share_percent=experiment.share_percent
        )
        else Arm.A
    )
    version = experiment.treatment if arm == Arm.B else experiment.control
    if lead_id is None:
        return version  # a lead that is not stored (a rehearsal): nothing to count
    ExperimentAssignment.objects.bulk_create(
        [ExperimentAssignment(experiment=experiment, lead_id=lead_id, arm=arm, version=version)],
        ignore_conflicts=True,
    )
    return version


def experiment_check(*, experiment_id: int) -> ExperimentVerdict:
    """One look at a running experiment (beat, hourly). The first decision is kept: always-valid p-values
    are a running minimum, and a boundary once crossed stays crossed."""
    with transaction.atomic():
        experiment = (
            Experiment.objects.select_for_update()
            .select_related("treatment")
            .filter(pk=experiment_id)
            .first()
        )
        if experiment is None or experiment.status != ExperimentStatus.RUNNING:
            return ExperimentVerdict.NOT_YET
        report = selectors.experiment_report(experiment=experiment)
        primary = report.primary
        changed = ["min_p_value"]
        experiment.min_p_value = min(experiment.min_p_value, primary.p_value)
        decided = experiment.verdict == ExperimentVerdict.NOT_YET and report.verdict != stats.Verdict.NOT_YET
        if decided:
            experiment.verdict = str(report.verdict)
            experiment.decided_at = timezone.now()
            changed += ["verdict", "decided_at"]
        experiment.save(update_fields=changed)
        if decided:
            activity_record(
                verb="release.experiment_decided",
                data={"experiment_id": experiment.pk, "verdict": experiment.verdict, "lift": primary.lift},
            )
            author = experiment.proposal.proposed_by_id if experiment.proposal_id else None
            _managers_and(
                author,
                verb="release.experiment_decided",
                message=f"Experiment with v{experiment.treatment.version}: {report.headline}",
                url="/dashboard/training/prompt/#experiment",
            )
        return ExperimentVerdict(experiment.verdict)


def experiments_check() -> list[str]:
    return [
        str(experiment_check(experiment_id=pk))
        for pk in Experiment.objects.filter(status=ExperimentStatus.RUNNING).values_list("pk", flat=True)
    ]


# --- Emergency rollback ----------


@transaction.atomic
def release_rollback(*, user: Any, reason: str, to_version_id: int | None = None) -> PromptVersion:
    """No proposal needed: stop any experiment and make the previous version (or `to_version_id`) active."""
    _require(user, roles.PERM_ACTIVATE_PROMPT, "roll back prompt versions")
    reason = (reason or "").strip()
    if not reason:
        raise ValidationError({"reason": "Say why you roll back: the reason is required."})
    active = PromptVersion.objects.filter(is_active=True).first()
    if to_version_id is not None:
        target = PromptVersion.objects.filter(pk=to_version_id).first()
        if target is None:
            raise NotFound("No such prompt version.")
    else:
        target = selectors.previous_version(active=active)
    stopped = _experiment_end_running(
        user=user, status=ExperimentStatus.STOPPED, reason=f"Rollback: {reason}"
    )
    if target is None or (active is not None and target.pk == active.pk):
        if stopped is not None:
            return active  # the experiment was the thing to roll back
        raise Conflict("There is no previous version to roll back to.")
    activated = prompt_services.prompt_version_activate(version=target, user=user)
    RegressionAlert.objects.filter(status=AlertStatus.OPEN, version=active).update(
        status=AlertStatus.ROLLED_BACK, resolved_at=timezone.now(), resolved_by=_actor(user)
    )
    activity_record(
        verb="release.rolled_back",
        actor=user,
        data={
            "from_version": active.version if active else None,
            "to_version": target.version,
            "reason": reason[:500],
        },
    )
    _managers_and(
        active.author_id if active else None,
        verb="release.rolled_back",
        message=f"Rolled back from v{active.version if active else '—'} to v{target.version}: {reason}",
        url="/dashboard/training/prompt/",
    )
    return activated


# --- The regression watch ----------


def regression_watch(*, now: Any = None) -> list[int]:
    """Compare each live release with what it replaced (same mSPRT, one-sided); open an alert per metric that
    dropped, notify managers and the author, and roll back by itself only when RELEASE_AUTO_ROLLBACK is on and
    the qualification rate fell by at least RELEASE_AUTO_ROLLBACK_DROP_POINTS."""
    now = now or timezone.now()
    opened: list[int] = []
    for watch in selectors.releases_under_watch(now=now):
        findings = stats.regression_check(baseline=watch.baseline, current=watch.current)
        for finding in findings:
            if not finding.dropped:
                continue
            alert_id = _alert_open(watch=watch, finding=finding)
            if alert_id is not None:
                opened.append(alert_id)
                _maybe_auto_rollback(watch=watch, finding=finding)
    return opened


def _alert_open(*, watch: "selectors.WatchedRelease", finding: stats.WatchFinding) -> int | None:
    with transaction.atomic():
        if RegressionAlert.objects.filter(
            version_id=watch.version.pk, metric=str(finding.metric), status=AlertStatus.OPEN
        ).exists():
            return None
        try:
            with transaction.atomic():
                alert = RegressionAlert.objects.create(
                    version_id=watch.version.pk,
                    baseline_version_id=watch.baseline_version.pk if watch.baseline_version else None,
                    experiment_id=watch.experiment.pk if watch.experiment else None,
                    metric=str(finding.metric),
                    result=finding.result.as_dict(),
                )
        except IntegrityError:
            return None
        activity_record(
            verb="release.regression_detected",
            data={"alert_id": alert.pk, "version": watch.version.version, "metric": str(finding.metric)},
        )
        lift = finding.result.lift or 0
        baseline_label = (
            f"v{watch.baseline_version.version}" if watch.baseline_version else "the previous version"
        )
        _managers_and(
            watch.version.author_id,
            verb="release.regression_detected",
            message=(
                f"v{watch.version.version}: {finding.metric} rate {'fell' if lift < 0 else 'rose'} by "
                f"{abs(lift) * 100:.1f} points against {baseline_label}."
            ),
            url="/dashboard/training/prompt/#regression",
        )
        return alert.pk


def _maybe_auto_rollback(*, watch: "selectors.WatchedRelease", finding: stats.WatchFinding) -> None:
    if not settings.RELEASE_AUTO_ROLLBACK or finding.metric is not stats.Metric.QUALIFICATION:
        return
    drop_points = -(finding.result.lift or 0) * 100
    if drop_points < settings.RELEASE_AUTO_ROLLBACK_DROP_POINTS:
        return
    reason = f"Automatic: qualification fell {drop_points:.1f} points (regression watch)."
    with transaction.atomic():
        if watch.experiment is not None:
            experiment = Experiment.objects.select_for_update().filter(pk=watch.experiment.pk).first()
            if experiment and experiment.status == ExperimentStatus.RUNNING:
                _experiment_end_running(user=None, status=ExperimentStatus.STOPPED, reason=reason)
        elif watch.baseline_version is not None:
            prompt_services.prompt_version_activate(version=watch.baseline_version, user=_SystemUser())
            RegressionAlert.objects.filter(status=AlertStatus.OPEN, version_id=watch.version.pk).update(
                status=AlertStatus.ROLLED_BACK, resolved_at=timezone.now()
            )
        activity_record(
            verb="release.auto_rolled_back", data={"version": watch.version.version, "reason": reason}
        )
        _managers_and(
            watch.version.author_id,
            verb="release.auto_rolled_back",
            message=reason,
            url="/dashboard/training/prompt/",
        )


class _SystemUser:
    """The actor of an automatic rollback: no person, recorded as such."""

    is_authenticated = False
    pk = None

    def has_perm(self, perm: str) -> bool:
        return True


@transaction.atomic
def alert_dismiss(*, alert: RegressionAlert, user: Any) -> RegressionAlert:
    _require(user, roles.PERM_ACTIVATE_PROMPT, "dismiss regression alerts")
    updated = RegressionAlert.objects.filter(pk=alert.pk, status=AlertStatus.OPEN).update(
        status=AlertStatus.DISMISSED, resolved_at=timezone.now(), resolved_by=_actor(user)
    )
    if not updated:
        raise Conflict("This alert is no longer open.")
    activity_record(verb="release.regression_dismissed", actor=user, data={"alert_id": alert.pk})
    alert.refresh_from_db()
    return alert


# --- The model retirement watch ----------


def _model_list() -> list[dict[str, Any]]:
    """GET /v1/models of the configured OpenAI-compatible server, as plain dicts (with `shutdown_date`)."""
    import openai

    client = openai.OpenAI(
        api_key=settings.OPENAI_API_KEY,
        base_url=settings.OPENAI_BASE_URL,
        timeout=settings.OPENAI_TIMEOUT_SECONDS,
        max_retries=1,
    )
    body = client.get("/models", cast_to=object)
    data = body.get("data") if isinstance(body, dict) else None
    return [item for item in (data or []) if isinstance(item, dict) and isinstance(item.get("id"), str)]


def retirement_watch(*, today: date | None = None) -> list[str]:
    """Daily: record the shutdown date of every model a live version uses, and notify managers once per date
    when it falls within RELEASE_RETIREMENT_NOTICE_DAYS. Returns the models that are about to shut down."""
    if not settings.OPENAI_API_KEY:
        return []  # the offline responder has no models to retire
    today = today or timezone.localdate()
    listed = {item["id"]: item for item in _model_list()}
    now = timezone.now()
    soon: list[str] = []
    for name, versions in selectors.models_in_use().items():
        item = listed.get(name)
        raw = item.get("shutdown_date") if item else None
        shutdown = parse_date(raw) if isinstance(raw, str) else None
        with transaction.atomic():
            row, _ = ModelShutdown.objects.select_for_update().get_or_create(
                model_name=name, defaults={"checked_at": now}
            )
            row.shutdown_date = shutdown
            row.listed = item is not None
            row.checked_at = now
            fields = ["shutdown_date", "listed", "checked_at"]
            due = shutdown is not None and shutdown - today <= timedelta(
                days=settings.RELEASE_RETIREMENT_NOTICE_DAYS
            )
            if due:
                soon.append(name)
            if due and row.notified_for != shutdown:
                row.notified_for = shutdown
                fields.append("notified_for")
                days = (shutdown - today).days
                labels = ", ".join(f"v{v}" for v in versions)
                activity_record(
                    verb="release.model_retiring",
                    data={"model": name, "shutdown_date": shutdown.isoformat(), "versions": versions},
                )
                _managers_and(
                    verb="release.model_retiring",
                    message=f"{name} (used by {labels}) shuts down on {shutdown.isoformat()}, in {days} days."
                    " "
                    "Try a replacement from the prompt page.",
                    url="/dashboard/training/prompt/#retirement",
                )
            row.save(update_fields=fields)
    return soon
