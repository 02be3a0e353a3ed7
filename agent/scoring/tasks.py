from celery import shared_task

from agent.scoring import services


@shared_task(name="scoring.score_idle", time_limit=900, soft_time_limit=840, ignore_result=True)
def score_idle() -> dict[str, int]:
    """Beat: score the conversations idle SCORING_IDLE_HOURS (each once per last message; safe to repeat)."""
    return services.scoring_run_due()
