"""Starting an evaluation run: validate, create the run (and its baseline), queue it on commit."""

from django.contrib.auth.base_user import AbstractBaseUser
from django.core.exceptions import ValidationError
from django.db import transaction

from agent import budget
from agent.evaluation import tasks
from agent.evaluation.selectors import evaluation_examples
from agent.models import EvaluationRun
from config.enqueue import enqueue_on_commit
from prompts.models import PromptVersion

DEFAULT_LIMIT = 50
MAX_LIMIT = 500


def _limit_clean(limit: int | None) -> int:
    if limit is None:
        return DEFAULT_LIMIT
    if not isinstance(limit, int) or isinstance(limit, bool) or not 1 <= limit <= MAX_LIMIT:
        raise ValidationError({"limit": f"Give a number of examples from 1 to {MAX_LIMIT}."})
    return limit


@transaction.atomic
def evaluation_run_create(
    *,
    version: PromptVersion,
    against: PromptVersion | None = None,
    limit: int | None = None,
    user: AbstractBaseUser | None = None,
    schedule: bool = True,
) -> EvaluationRun:
    """A queued run of `version` (and, with `against`, a baseline run of that version on the same examples).

    With `schedule` the `agent.evaluate_prompt` task is queued for each run once the transaction commits;
    the management command passes schedule=False and executes the runs itself.
    """
    example_limit = _limit_clean(limit)
    budget.budget_check(purpose=budget.Purpose.EVALUATION)  # 409 naming the cap when today's is reached
    if against is not None and against.pk == version.pk:
        raise ValidationError({"against": "Compare a version with a different version."})
    total = min(example_limit, evaluation_examples().count())
    baseline = None
    if against is not None:
        baseline = EvaluationRun.objects.create(
            prompt_version=against, example_limit=example_limit, total=total, created_by=user
        )
    run = EvaluationRun.objects.create(
        prompt_version=version,
        against_version=against,
        baseline_run=baseline,
        example_limit=example_limit,
        total=total,
        created_by=user,
    )
    if schedule:
        run_ids = [run.pk] + ([baseline.pk] if baseline is not None else [])
        evaluation_run_schedule(run_ids=run_ids)
    return run


def evaluation_run_schedule(*, run_ids: list[int]) -> None:
    """Queue `agent.evaluate_prompt` for the runs (one after the other) once the transaction commits.

    Without a broker (the local demo) it runs in a background thread, as agent turns do: an eager task
    would hold the page's request for the whole run.
    """
    if run_ids:
        first, *rest = run_ids
        enqueue_on_commit(
            tasks.evaluate_prompt, first, *rest, background=True, thread_name=f"evaluation-{first}"
        )
