from celery import shared_task

from agent.spend import services


@shared_task(name="spend.budget_alert", time_limit=120, soft_time_limit=100, max_retries=0)
def budget_alert() -> list[int]:
    """Beat (SPEND_ALERT_INTERVAL_SECONDS): tell managers once when the month crosses 80 % and 100 %."""
    return services.spend_budget_alert_check()
