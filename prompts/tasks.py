from celery import shared_task
from django.utils.dateparse import parse_datetime

from prompts import services
from prompts.funnel import services as funnel_services


@shared_task(
    name="prompts.record_reply",
    time_limit=60,
    soft_time_limit=50,
    max_retries=5,
    autoretry_for=(Exception,),
    retry_backoff=True,
    retry_jitter=True,
)
def record_reply(message_id: int) -> int | None:
    return services.prompt_version_record_reply(message_id=message_id)


@shared_task(
    name="prompts.record_qualification",
    time_limit=60,
    soft_time_limit=50,
    max_retries=5,
    autoretry_for=(Exception,),
    retry_backoff=True,
    retry_jitter=True,
)
def record_qualification(lead_id: int, qualified_at: str) -> int | None:
    moment = parse_datetime(qualified_at)
    if moment is None:
        raise ValueError(f"qualified_at is not an ISO datetime: {qualified_at!r}")
    return services.prompt_version_record_qualification(lead_id=lead_id, qualified_at=moment)


@shared_task(name="prompts.reconcile_figures", time_limit=300, soft_time_limit=280)
def reconcile_figures(limit: int = 500) -> dict[str, int]:
    figures = services.prompt_figures_reconcile(limit=limit)
    # The funnel steps (booked, won, lost, ...) made since the last run, credited by the same rule.
    figures["funnel_steps"] = funnel_services.funnel_reconcile(limit=limit)
    return figures
