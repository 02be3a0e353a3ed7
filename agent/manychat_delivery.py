"""What the delivery step does when ManyChat did not take a reply (manychat-conformance.md S1, S2; D2).

Every refusal a person can fix (a wrong token, the 24-hour window, 3021/3031, 304X, an error reported
with HTTP 200) marks the reply undeliverable with its reason, flags the lead for a person, and alerts the
admins once per cause: one unread notification per cause and admin, however many leads it hits (a wrong
token loses every API reply at once). A send that got no answer after it was written is marked
`unknown`, never sent again, and surfaced the same way: ManyChat has no idempotency key and no API that
reads a conversation back, so only a person looking at Live Chat can tell whether it arrived. What
ManyChat did not take (429, 5xx, no connection) stays pending for a retry.
"""

import logging

from django.conf import settings
from django.db import transaction

from agent.manychat import ManyChatError, SendFailure
from config.enqueue import enqueue_on_commit
from leads import selectors as lead_selectors
from leads import services as lead_services
from leads.models import DeliveryStatus, Lead, Notification

logger = logging.getLogger(__name__)

ADMIN_PERMISSION = "auth.change_user"
ALERT_VERB = "manychat.send_refused"


def _alert_verb(failure: SendFailure) -> str:
    return f"{ALERT_VERB}.{failure.value}"[:64]


def admins_alert_once(*, failure: SendFailure, detail: str, lead: Lead) -> int:
    """Notify each admin of this cause unless an unread alert for it already waits; returns how many."""
    verb = _alert_verb(failure)
    admins = list(lead_selectors.users_with_permission(perm=ADMIN_PERMISSION))
    waiting = set(
        Notification.objects.filter(recipient__in=admins, verb=verb, read_at__isnull=True).values_list(
            "recipient_id", flat=True
        )
    )
    recipients = [admin for admin in admins if admin.pk not in waiting]
    if not recipients:
        return 0
    scope = "every reply sent through the API" if failure.account_wide else f"e.g. {lead.display_name}"
    lead_services.notification_notify(
        recipients=recipients,
        verb=verb,
        message=f"ManyChat refused a reply ({scope}): {failure.explanation} ManyChat said: {detail}"[:500],
        target=lead,
        url=f"/dashboard/leads/{lead.pk}/",
    )
    return len(recipients)


def delivery_failure_record(*, message_id: int, lead: Lead, error: ManyChatError) -> DeliveryStatus:
    """Record why a send failed and who must know. Returns the message's delivery status afterwards:
    PENDING (send again later), UNDELIVERABLE (refused) or UNKNOWN (maybe delivered, never resent)."""
    failure = error.failure
    reason = f"{failure.value}: {failure.explanation} (ManyChat: {error})"
    if failure.retryable:
        lead_services.message_set_delivery(message_id=message_id, status=DeliveryStatus.PENDING, error=reason)
        return DeliveryStatus.PENDING
    status = (
        DeliveryStatus.UNKNOWN if failure is SendFailure.OUTCOME_UNKNOWN else DeliveryStatus.UNDELIVERABLE
    )
    with transaction.atomic():
        lead_services.message_set_delivery(message_id=message_id, status=status, error=reason)
        lead_services.lead_flag_for_human(
            lead=lead, reason=failure.explanation, pause_bot=False, verb="agent.needs_human"
        )
        alerted = admins_alert_once(failure=failure, detail=str(error)[:200], lead=lead)
    logger.warning(
        "manychat: reply %s to lead %s is %s (%s); %s admin(s) alerted",
        message_id,
        lead.pk,
        status,
        reason,
        alerted,
    )
    return status


def lead_learned_sync(*, lead_id: int, qualified: bool) -> None:
    """After a turn that learned something: write it into ManyChat's custom fields, and start the
    qualification flow, as tasks queued once the reply commits."""
    if not settings.MANYCHAT_API_TOKEN:
        return
    from agent.manychat_platform import tasks

    if settings.MANYCHAT_FIELD_MAP:  # the stage alone is already set by the reply's own actions
        enqueue_on_commit(tasks.push_lead_fields, lead_id)
    if qualified and settings.MANYCHAT_QUALIFIED_FLOW_NS:
        enqueue_on_commit(tasks.send_qualified_flow, lead_id)
