"""Operations tasks: the Celery heartbeat that readiness reads."""

from celery import shared_task

from config.health import heartbeat_record


@shared_task(name="ops.heartbeat", ignore_result=True, time_limit=30, soft_time_limit=20)
def heartbeat() -> None:
    heartbeat_record()
