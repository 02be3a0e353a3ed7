from celery import shared_task
from django.conf import settings

from agent.inbox import drafts, services


@shared_task(name="inbox.deliver_operator_message", time_limit=60, soft_time_limit=50, max_retries=0)
def deliver_operator_message(message_id: int) -> str:
    """Send a person's reply through sendContent (a no-op once it left the pending state)."""
    return services.operator_message_deliver(message_id=message_id)


@shared_task(name="inbox.remove_handoff_tag", time_limit=30, soft_time_limit=25, max_retries=0)
def remove_handoff_tag(lead_id: int) -> bool:
    return services.lead_handoff_tag_remove(lead_id=lead_id)


@shared_task(name="inbox.idle_hand_back", time_limit=60, soft_time_limit=50)
def idle_hand_back() -> int:
    """Beat: hand back leads whose person has been silent for INBOX_IDLE_HANDBACK_MINUTES (0: off)."""
    return len(services.inbox_idle_hand_back(minutes=settings.INBOX_IDLE_HANDBACK_MINUTES))


@shared_task(name="inbox.alert_waiting", time_limit=120, soft_time_limit=100)
def alert_waiting() -> int:
    """Beat: email about leads waiting over INBOX_ALERT_EMAIL_MINUTES for a person (0: off)."""
    return len(services.inbox_alert_waiting(minutes=settings.INBOX_ALERT_EMAIL_MINUTES))


@shared_task(name="inbox.write_shadow_draft", time_limit=120, soft_time_limit=100, max_retries=0)
def write_shadow_draft(message_id: int) -> int | None:
    """Shadow mode: what the agent would have said to a lead a person handles (never sent)."""
    shadow = drafts.shadow_draft_write(message_id=message_id)
    return shadow.pk if shadow is not None else None
