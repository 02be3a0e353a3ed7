"""Celery tasks for agent.manychat_platform: ids in, safe to run twice (each call sets, not adds)."""

import logging

from celery import shared_task

from agent import manychat
from agent.manychat_platform import services

logger = logging.getLogger(__name__)

_RETRY = {"max_retries": 5, "retry_backoff": 5, "retry_backoff_max": 300, "retry_jitter": True}


def _run(task, call, **kwargs):
    try:
        return call(**kwargs)
    except manychat.ManyChatError as exc:
        if exc.retryable:
            raise task.retry(exc=exc, countdown=exc.retry_after or None) from exc
        # A refusal a person must fix (token, missing field...): logged, never retried blindly.
        logger.warning("manychat: %s for %s failed: %s (%s)", task.name, kwargs, exc, exc.failure)
        return None


@shared_task(bind=True, name="manychat.push_lead_fields", time_limit=60, soft_time_limit=50, **_RETRY)
def push_lead_fields(self, lead_id: int) -> list[str] | None:
    """Write what the agent learned about a lead into its ManyChat custom fields."""
    return _run(self, services.lead_fields_push, lead_id=lead_id)


@shared_task(bind=True, name="manychat.remove_handoff_tag", time_limit=60, soft_time_limit=50, **_RETRY)
def remove_handoff_tag(self, lead_id: int) -> bool | None:
    """Take the handoff tag off the contact when the bot is resumed (the inbox's "hand back")."""
    return _run(self, services.lead_handoff_tag_remove, lead_id=lead_id)


@shared_task(bind=True, name="manychat.send_qualified_flow", time_limit=60, soft_time_limit=50, max_retries=3)
def send_qualified_flow(self, lead_id: int) -> bool | None:
    """Start the team's ManyChat flow for a lead that just qualified (MANYCHAT_QUALIFIED_FLOW_NS)."""
    return _run(self, services.lead_qualified_flow_send, lead_id=lead_id)


@shared_task(bind=True, name="manychat.issue_contact_token", time_limit=60, soft_time_limit=50, **_RETRY)
def issue_contact_token(self, lead_id: int) -> bool | None:
    """Give a new contact its random token (agent/contact_token.py), written into its ManyChat field."""
    from agent import contact_token

    return _run(self, contact_token.contact_token_issue, lead_id=lead_id)
