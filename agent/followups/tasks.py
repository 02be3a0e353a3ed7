from celery import shared_task

from agent.followups import services
from config.enqueue import enqueue_on_commit


@shared_task(name="followups.send_one", time_limit=120, soft_time_limit=100, ignore_result=True)
def send_one(lead_id: int) -> str:
    """One lead's due follow-up; the claim row makes a second run (or a second worker) a no-op."""
    return services.followup_send(lead_id=lead_id).state


@shared_task(name="followups.send_due", time_limit=120, soft_time_limit=100, ignore_result=True)
def send_due() -> int:
    """Beat: queue a follow-up for each lead due one now (a lost task is found again by the next beat)."""
    due = services.followup_due_lead_ids()
    for lead_id in due:
        enqueue_on_commit(send_one, lead_id)
    return len(due)
