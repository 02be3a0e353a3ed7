"""The inbox's writes: a person takes a lead over, replies through ManyChat, writes notes, hands it back.

Each operation checks the role, writes the lead-level facts through leads.assignment in one transaction,
and queues what leaves the building (the sendContent call, the handoff-tag removal) on commit.
"""

import logging
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.mail import send_mail
from django.db import transaction
from django.utils import timezone

from agent import manychat
from leads import assignment, roles
from leads.models import DeliveryStatus, Lead, Message, MessageRole, Note
from leads.selectors import users_with_permission
from leads.services import activity_record
from training import candidates
from training.models import CorrectionCandidate, TrainingExample

logger = logging.getLogger(__name__)

# Error text prefixes on an operator message that could not be delivered (the conversation view reads them).
WINDOW_CLOSED_PREFIX = "Outside the 24-hour window"


def _require_operator(user: Any) -> None:
    if not user.has_perm(roles.PERM_CHANGE_LEAD):
        raise PermissionDenied("Your role may read the inbox but not reply, assign or take over.")


def _enqueue(task: Any, *args: Any) -> None:
    """Queue a task once the current transaction commits (in process without a broker)."""
    transaction.on_commit(lambda: task.delay(*args), robust=True)


@transaction.atomic
def inbox_take_over(*, lead: Lead, user: Any) -> Lead:
    _require_operator(user)
    assignment.lead_take_over(lead=lead, user=user)
    return lead


@transaction.atomic
def inbox_hand_back(*, lead: Lead, user: Any) -> Lead:
    """Give the lead back to the bot; the handoff tag is removed in ManyChat after commit."""
    _require_operator(user)
    if assignment.lead_hand_back(lead=lead, actor=user):
        from agent.inbox.tasks import remove_handoff_tag

        _enqueue(remove_handoff_tag, lead.pk)
    return lead


@transaction.atomic
def inbox_assign(*, lead: Lead, user: Any, assignee_id: int | None) -> Lead:
    _require_operator(user)
    assignee = None
    if assignee_id is not None:
        assignee = get_user_model().objects.filter(pk=assignee_id, is_active=True).first()
        if assignee is None or not assignee.has_perm(roles.PERM_CHANGE_LEAD):
            raise ValidationError({"assignee_id": "Pick an active person who may work leads."})
    return assignment.lead_assign(lead=lead, assignee=assignee, actor=user)


@transaction.atomic
def inbox_note_add(*, lead: Lead, user: Any, text: str) -> Note:
    _require_operator(user)
    return assignment.note_add(lead=lead, author=user, text=text)


@transaction.atomic
def inbox_message_send(*, lead: Lead, user: Any, text: str) -> Message:
    """Store a person's reply (pending), pre-fill a correction after an agent reply, send on commit."""
    _require_operator(user)
    message = assignment.message_record_operator(lead=lead, text=text, sent_by=user)
    candidates.correction_candidate_create_for_operator_reply(operator_message=message)
    from agent.inbox.tasks import deliver_operator_message

    _enqueue(deliver_operator_message, message.pk)
    return message


def operator_message_deliver(*, message_id: int) -> str:
    """Send a pending operator message through sendContent once. Returns its delivery status afterwards."""
    message = (
        Message.objects.select_related("conversation__lead")
        .filter(pk=message_id, role=MessageRole.OPERATOR)
        .first()
    )
    if message is None:
        return "missing"
    if message.delivery_status != DeliveryStatus.PENDING:
        return message.delivery_status
    claimed = Message.objects.filter(
        pk=message.pk, delivery_status=DeliveryStatus.PENDING, attempts=message.attempts
    ).update(attempts=message.attempts + 1)
    if not claimed:
        return DeliveryStatus.PENDING  # another worker is sending it
    lead = message.conversation.lead
    data = manychat.dynamic_block_build(channel=lead.channel, text=message.text)
    status, error = DeliveryStatus.SENT, ""
    try:
        manychat.manychat_send_content(subscriber_id=lead.manychat_subscriber_id, data=data)
    except manychat.ManyChatWindowClosed as exc:
        status, error = DeliveryStatus.UNDELIVERABLE, f"{WINDOW_CLOSED_PREFIX} (ManyChat {exc.code}): {exc}"
    except manychat.ManyChatError as exc:
        status, error = DeliveryStatus.UNDELIVERABLE, str(exc)
    Message.objects.filter(pk=message.pk).update(delivery_status=status, error=error[:2000])
    if error:
        logger.warning("inbox: operator message %s not delivered: %s", message.pk, error)
    return status


def _manychat_remove_tag(*, subscriber_id: str, tag_name: str) -> None:
    """POST /fb/subscriber/removeTagByName.

    Hook: when agent.manychat grows its own tag client (issue 14), this defers to it.
    """
    remove = getattr(manychat, "manychat_remove_tag", None)
    if remove is not None:
        remove(subscriber_id=subscriber_id, tag_name=tag_name)
        return
    token = settings.MANYCHAT_API_TOKEN
    if not token:
        raise manychat.ManyChatError("MANYCHAT_API_TOKEN is not set", retryable=False)
    body = {
        "subscriber_id": int(subscriber_id) if subscriber_id.isdigit() else subscriber_id,
        "tag_name": tag_name,
    }
    response = manychat._http_client().post(
        "/fb/subscriber/removeTagByName",
        json=body,
        headers={"Authorization": f"Bearer {token}", "Accept": "application/json"},
    )
    if response.status_code >= 300:
        raise manychat.ManyChatError(
            f"HTTP {response.status_code}", status=response.status_code, retryable=response.status_code >= 500
        )


def lead_handoff_tag_remove(*, lead_id: int) -> bool:
    tag = settings.MANYCHAT_HANDOFF_TAG
    lead = Lead.objects.filter(pk=lead_id).only("id", "manychat_subscriber_id").first()
    if lead is None or not tag or not settings.MANYCHAT_API_TOKEN:
        return False
    try:
        _manychat_remove_tag(subscriber_id=lead.manychat_subscriber_id, tag_name=tag)
    except manychat.ManyChatError as exc:
        logger.warning("inbox: could not remove tag %r from lead %s: %s", tag, lead_id, exc)
        return False
    return True


def inbox_idle_hand_back(*, minutes: int, now: Any = None) -> list[int]:
    """Hand back to the bot every taken-over lead whose person wrote nothing for `minutes` (0: off)."""
    if minutes <= 0:
        return []
    before = (now or timezone.now()) - timedelta(minutes=minutes)
    handed: list[int] = []
    for lead_id in assignment.leads_idle_since(before=before):
        lead = Lead.objects.get(pk=lead_id)
        with transaction.atomic():
            if assignment.lead_hand_back(lead=lead, actor=None):
                from agent.inbox.tasks import remove_handoff_tag

                _enqueue(remove_handoff_tag, lead_id)
                handed.append(lead_id)
    return handed


ALERT_VERB = "inbox.alert_emailed"


def inbox_alert_waiting(*, minutes: int, now: Any = None) -> list[int]:
    """Email about each lead waiting over `minutes` for a person, once per wait (0: off).

    To the lead's assignee when it has one with an email address, else to everyone who may work leads.
    """
    if minutes <= 0:
        return []
    now = now or timezone.now()
    everyone: list[str] | None = None
    alerted: list[int] = []
    for lead in assignment.leads_waiting_unalerted(before=now - timedelta(minutes=minutes), verb=ALERT_VERB):
        if lead.assignee is not None and lead.assignee.email:
            recipients = [lead.assignee.email]
        else:
            if everyone is None:
                people = users_with_permission(perm=roles.PERM_CHANGE_LEAD).exclude(email="")
                everyone = sorted(set(people.values_list("email", flat=True)))
            recipients = everyone
        if not recipients:
            continue
        waited = int((now - lead.waiting_since).total_seconds() // 60)
        send_mail(
            subject=f"{lead.display_name} has waited {waited} minutes for a person",
            message=f"{lead.display_name} is waiting for an answer since "
            f"{timezone.localtime(lead.waiting_since):%H:%M}.\n\nOpen the conversation: "
            f"{settings.INBOX_BASE_URL}/dashboard/inbox/{lead.pk}/",
            from_email=None,
            recipient_list=recipients,
            fail_silently=False,
        )
        activity_record(verb=ALERT_VERB, lead=lead, data={"to": recipients, "minutes": waited})
        alerted.append(lead.pk)
    return alerted


def inbox_candidate_submit(
    *, candidate: CorrectionCandidate, user: Any, feedback: str, expected_response: str | None = None
) -> TrainingExample:
    return candidates.correction_candidate_submit(
        candidate=candidate, user=user, feedback=feedback, expected_response=expected_response
    )


def inbox_candidate_dismiss(*, candidate: CorrectionCandidate, user: Any) -> CorrectionCandidate:
    return candidates.correction_candidate_dismiss(candidate=candidate, user=user)
