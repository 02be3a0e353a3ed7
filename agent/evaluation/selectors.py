"""Reads of evaluation runs: one run, the latest, and a run's verdicts beside its baseline's."""

from dataclasses import dataclass

from django.db.models import QuerySet

from agent.models import EvaluationResult, EvaluationRun
from training.models import ExampleStatus, TrainingExample


def evaluation_examples() -> QuerySet[TrainingExample]:
    """The examples a run replays: every approved one."""
    return TrainingExample.objects.filter(status=ExampleStatus.APPROVED)


def evaluation_run_get(*, run_id: int) -> EvaluationRun | None:
    return (
        EvaluationRun.objects.select_related(
            "prompt_version", "against_version", "baseline_run__prompt_version", "created_by"
        )
        .defer("prompt_version__content", "against_version__content", "baseline_run__prompt_version__content")
        .filter(pk=run_id)
        .first()
    )


def evaluation_run_latest() -> EvaluationRun | None:
    """The newest run that is not another run's baseline: what the prompt page shows."""
    return (
        EvaluationRun.objects.select_related(
            "prompt_version", "against_version", "baseline_run__prompt_version", "created_by"
        )
        .defer("prompt_version__content", "against_version__content", "baseline_run__prompt_version__content")
        .filter(compared_runs__isnull=True)
        .order_by("-created_at", "-id")
        .first()
    )


@dataclass
class ComparisonRow:
    example: TrainingExample
    result: EvaluationResult | None = None
    baseline: EvaluationResult | None = None


def evaluation_comparison(*, run: EvaluationRun) -> list[ComparisonRow]:
    """Example by example, the run's verdict beside its baseline's, in one query."""
    run_ids = [run.pk] + ([run.baseline_run_id] if run.baseline_run_id else [])
    results = (
        EvaluationResult.objects.filter(run_id__in=run_ids)
        .select_related("training_example")
        .only(
            "id",
            "run_id",
            "passed",
            "reason",
            "reply",
            "tokens",
            "checks",
            "examples",
            "training_example__id",
            "training_example__example_type",
            "training_example__user_message",
        )
        .order_by("training_example_id", "run_id")
    )
    rows: dict[int, ComparisonRow] = {}
    for result in results:
        row = rows.setdefault(result.training_example_id, ComparisonRow(example=result.training_example))
        if result.run_id == run.pk:
            row.result = result
        else:
            row.baseline = result
    return list(rows.values())
