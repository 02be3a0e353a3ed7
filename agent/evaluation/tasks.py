from celery import shared_task

from agent.evaluation.runner import evaluation_run_execute


@shared_task(name="agent.evaluate_prompt", time_limit=3600, soft_time_limit=3500, max_retries=0)
def evaluate_prompt(run_id: int, *then_run_ids: int) -> str:
    """Replay approved examples through a prompt version, then the runs in `then_run_ids` (a baseline), one
    after the other; safe to run twice. Returns the first run's status."""
    status = evaluation_run_execute(run_id=run_id)
    for other in then_run_ids:
        evaluation_run_execute(run_id=other)
    return status
