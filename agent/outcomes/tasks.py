from celery import shared_task

from agent.outcomes import outbound


@shared_task(name="outcomes.deliver_webhook", time_limit=60, soft_time_limit=45, ignore_result=True)
def deliver_webhook(delivery_id: int) -> str:
    """One attempt at one delivery; a failure is retried by `outcomes.dispatch_webhooks` when it is due."""
    return outbound.webhook_deliver(delivery_id=delivery_id).value


@shared_task(name="outcomes.dispatch_webhooks", time_limit=120, soft_time_limit=100, ignore_result=True)
def dispatch_webhooks() -> dict[str, int]:
    """Beat: turn new funnel activities into deliveries, and queue the retries that are due."""
    created = outbound.outbound_dispatch()
    due = outbound.deliveries_due()
    for delivery_id in due:
        deliver_webhook.delay(delivery_id)
    return {"created": created, "retried": len(due)}
