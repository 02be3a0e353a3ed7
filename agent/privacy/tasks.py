from celery import shared_task
from django.conf import settings

from agent.privacy.services import retention_apply


@shared_task(name="privacy.apply_retention", ignore_result=True, time_limit=3600, soft_time_limit=3500)
def apply_retention() -> dict[str, object]:
    # Daily: the activities of the last week past the cutoff are enough (older ones were done before).
    report = retention_apply(days=settings.DATA_RETENTION_DAYS, lookback_days=7)
    return {"cutoff": report.cutoff, "messages": report.messages, "activities": report.activities}
