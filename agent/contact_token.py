"""A contact's history is theirs: a random per-contact token proves which contact a request speaks for.

The webhook secret proves a request came from our flow, not which contact it is about: anyone holding it
could name any subscriber id and get replies built from that lead's history. So on first contact the agent
gives the contact a random token, written into a ManyChat custom field through the API
(MANYCHAT_CONTACT_TOKEN_FIELD) and kept here only as its SHA-256; the flow sends it back with every message
(`"contact_token": "{{ai_contact_token}}"`, or inside Full Contact Data's custom_fields). A request for a
lead that has a token but does not carry it is answered from its own message alone (no history, no known
facts) and flagged. The threat is described by pedronastasi/manychat-ai-agent's spec 019.
"""

import hashlib
import hmac
import logging
import secrets
from enum import StrEnum

from django.conf import settings

from agent import manychat
from config.enqueue import enqueue_on_commit
from leads import selectors as lead_selectors
from leads import services as lead_services
from leads.models import Lead, Message

logger = logging.getLogger(__name__)


class TokenCheck(StrEnum):
    OFF = "off"  # no MANYCHAT_CONTACT_TOKEN_FIELD or no API token: nothing to check
    UNISSUED = "unissued"  # the lead has no token yet: one is issued, this turn is not restricted
    VALID = "valid"
    REFUSED = "refused"  # missing or wrong: answered from its own message alone, flagged


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def contact_token_enabled() -> bool:
    return bool(settings.MANYCHAT_CONTACT_TOKEN_FIELD and settings.MANYCHAT_API_TOKEN)


def contact_token_check(*, lead: Lead, presented: str) -> TokenCheck:
    if not contact_token_enabled():
        return TokenCheck.OFF
    if not lead.manychat_token_hash:
        return TokenCheck.UNISSUED
    if presented and hmac.compare_digest(token_hash(presented), lead.manychat_token_hash):
        return TokenCheck.VALID
    return TokenCheck.REFUSED


def contact_token_refused_record(*, lead: Lead, message_id: int) -> None:
    """Flag a request that named this lead without its token (an activity and a person's attention)."""
    lead_services.activity_record(
        verb="agent.contact_token_refused",
        lead=lead,
        data={"message_id": message_id},
    )
    lead_services.lead_flag_for_human(
        lead=lead,
        reason="A message for this lead came without its contact token: answered without the lead's history.",
        pause_bot=False,
        verb="agent.needs_human",
    )


def contact_token_issue(*, lead_id: int) -> bool:
    """Give the lead a token: claim the hash first (one issuer wins a race), then write the token into
    ManyChat. If ManyChat does not take it, the claim is released so a later message issues another.
    Raises ManyChatError (after releasing the claim)."""
    if not contact_token_enabled():
        return False
    token = secrets.token_urlsafe(24)
    digest = token_hash(token)
    claimed = Lead.objects.filter(pk=lead_id, manychat_token_hash="").update(manychat_token_hash=digest)
    if not claimed:
        return False  # another worker issued one, or the lead is gone
    subscriber_id = Lead.objects.filter(pk=lead_id).values_list("manychat_subscriber_id", flat=True).first()
    try:
        manychat.manychat_set_field(
            subscriber_id=str(subscriber_id), field_name=settings.MANYCHAT_CONTACT_TOKEN_FIELD, value=token
        )
    except manychat.ManyChatError:
        Lead.objects.filter(pk=lead_id, manychat_token_hash=digest).update(manychat_token_hash="")
        raise
    return True


def lead_stranger(*, lead: Lead) -> Lead:
    """The lead as the model may see it on a refused request: its id (for the version it is assigned)
    and channel, none of its profile or known facts."""
    return Lead(
        pk=lead.pk,
        manychat_subscriber_id=lead.manychat_subscriber_id,
        channel=lead.channel,
        status=lead.status,
    )


def contact_token_turn(*, lead: Lead, presented: str, message: Message) -> bool:
    """The store step's check; True when the turn must be answered from its own message alone.

    A lead without a token gets one issued once this transaction commits (a task).
    """
    check = contact_token_check(lead=lead, presented=presented)
    if check is TokenCheck.UNISSUED:
        from agent.manychat_platform import tasks

        enqueue_on_commit(tasks.issue_contact_token, lead.pk)
    if check is not TokenCheck.REFUSED:
        return False
    contact_token_refused_record(lead=lead, message_id=message.pk)
    return True


def contact_token_refused_for(*, lead: Lead, message_id: int) -> bool:
    """Whether the store step refused this message's token (the task's turn honours it too)."""
    if not lead.manychat_token_hash or not contact_token_enabled():
        return False
    return lead_selectors.lead_activity_exists(
        lead_id=lead.pk, verb="agent.contact_token_refused", message_id=message_id
    )
