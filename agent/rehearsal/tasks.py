"""Rehearsal tasks: a run fans out one task per play (side × scenario × repeat); each is safe to run twice.

acks_late + reject_on_worker_lost (settings) redeliver a play whose worker process died; a play already done
is skipped, so a redelivery or a re-queue never plays a finished scenario again. The beat sweep
`rehearsal.resume_stalled` re-queues plays nobody holds (their worker died before they finished).
"""

import logging

from celery import shared_task

from agent.rehearsal import services

logger = logging.getLogger(__name__)


@shared_task(name="rehearsal.start_run", time_limit=600, soft_time_limit=570, max_retries=0)
def start_run(run_id: int) -> int:
    """Calibrate the judge, then queue every play not done yet. Returns how many were queued."""
    play_ids = services.rehearsal_run_start(run_id=run_id)
    _queue(play_ids)
    return len(play_ids)


@shared_task(name="rehearsal.play", time_limit=900, soft_time_limit=870, max_retries=0)
def play(play_id: int) -> str:
    return services.rehearsal_play_execute(play_id=play_id)


@shared_task(name="rehearsal.resume_stalled", time_limit=60, soft_time_limit=50)
def resume_stalled() -> int:
    """Beat: queue again the plays of running runs that nobody holds."""
    queued = 0
    for run_id in services.rehearsal_runs_stalled():
        play_ids = services.rehearsal_run_resume(run_id=run_id)
        _queue(play_ids)
        queued += len(play_ids)
    if queued:
        logger.info("rehearsal: queued %s stalled plays again", queued)
    return queued


def _queue(play_ids: list[int]) -> None:
    from django.conf import settings

    for play_id in play_ids:
        if settings.CELERY_TASK_ALWAYS_EAGER:
            play.apply(args=[play_id])
        else:
            play.delay(play_id)
