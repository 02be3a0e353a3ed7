import logging
import time

from celery import shared_task

from agent import selectors, turn
from agent.evaluation.tasks import evaluate_prompt  # noqa: F401  (registered with the worker from here)
from agent.rehearsal.tasks import play, resume_stalled, start_run  # noqa: F401  (the same, for rehearsals)
from agent.spend.tasks import budget_alert  # noqa: F401  (the monthly budget alert's beat task)
from config import logs, metrics

logger = logging.getLogger(__name__)


@shared_task(
    name="agent.complete_turn",
    time_limit=180,
    soft_time_limit=150,
    max_retries=5,
    autoretry_for=(turn.DeliveryRetryable,),
    retry_backoff=5,
    retry_backoff_max=300,
    retry_jitter=True,
)
def complete_turn(message_id: int) -> str:
    """Answer a lead's message and deliver it through sendContent (a no-op once done)."""
    logs.bind(message_id=message_id)
    logger.info("task: completing turn")
    started = time.monotonic()
    state = turn.turn_complete(message_id=message_id)
    metrics.record_turn(outcome=state, mode="worker", seconds=time.monotonic() - started)
    return state.value


@shared_task(name="agent.retry_incomplete_turns", time_limit=60, soft_time_limit=50)
def retry_incomplete_turns(limit: int = 100) -> dict[str, int]:
    """Beat: queue the turns that never completed (process died, model down, ManyChat down)."""
    due = selectors.turn_list_incomplete(limit=limit)
    for message_id in due.message_ids:
        complete_turn.delay(message_id)
    if due.message_ids:
        logger.info("queued %s incomplete agent turns", len(due.message_ids))
    return due.counts()
