"""A per-contact token, written into ManyChat, kept here only as a hash (agent/contact_token.py)."""

import pytest

from agent import contact_token
from agent.manychat_platform import tasks
from leads.models import Activity, Lead
from tests.factories import LeadFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def enabled(settings, fake_manychat):
    settings.MANYCHAT_CONTACT_TOKEN_FIELD = "ai_contact_token"
    return fake_manychat


def test_issue_writes_the_token_into_manychat_and_keeps_only_its_hash(enabled):
    lead = LeadFactory()
    assert tasks.issue_contact_token.apply(args=[lead.pk]).get() is True
    (call,) = enabled.calls_to("/fb/subscriber/setCustomFieldByName")
    assert call["subscriber_id"] == int(lead.manychat_subscriber_id)
    assert call["field_name"] == "ai_contact_token"
    token = call["field_value"]
    assert len(token) >= 32
    lead.refresh_from_db()
    assert lead.manychat_token_hash == contact_token.token_hash(token) != token
    assert contact_token.contact_token_check(lead=lead, presented=token) is contact_token.TokenCheck.VALID
    assert contact_token.contact_token_check(lead=lead, presented="") is contact_token.TokenCheck.REFUSED
    assert (
        contact_token.contact_token_check(lead=lead, presented=token + "x")
        is contact_token.TokenCheck.REFUSED
    )
    # Issued once: a second task does nothing.
    assert tasks.issue_contact_token.apply(args=[lead.pk]).get() is False
    assert len(enabled.calls_to("/fb/subscriber/setCustomFieldByName")) == 1


def test_a_refused_write_releases_the_claim(enabled):
    enabled.set_default(enabled.error(400, "Field not found", code=2004))
    lead = LeadFactory()
    assert tasks.issue_contact_token.apply(args=[lead.pk]).get() is None
    lead.refresh_from_db()
    assert lead.manychat_token_hash == ""
    assert contact_token.contact_token_check(lead=lead, presented="") is contact_token.TokenCheck.UNISSUED


def test_off_without_a_field_or_a_token(settings, enabled):
    lead = LeadFactory(manychat_token_hash=contact_token.token_hash("t"))
    settings.MANYCHAT_CONTACT_TOKEN_FIELD = ""
    assert contact_token.contact_token_check(lead=lead, presented="") is contact_token.TokenCheck.OFF
    settings.MANYCHAT_CONTACT_TOKEN_FIELD = "ai_contact_token"
    settings.MANYCHAT_API_TOKEN = ""
    assert contact_token.contact_token_check(lead=lead, presented="") is contact_token.TokenCheck.OFF


def test_a_refused_request_is_flagged(enabled):
    lead = LeadFactory()
    contact_token.contact_token_refused_record(lead=lead, message_id=5)
    assert Activity.objects.filter(lead=lead, verb="agent.contact_token_refused").exists()
    assert Lead.objects.get(pk=lead.pk).needs_human
