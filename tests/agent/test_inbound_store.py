"""The store step (agent.turn.inbound_store → leads.services): what ManyChat sends never overwrites what
the agent learned."""

import pytest
from django.utils import timezone

from leads.models import Lead
from leads.services import lead_merge_qualification_data, lead_upsert_from_manychat
from tests.factories import LeadFactory

pytestmark = pytest.mark.django_db


def test_new_manychat_fields_do_not_overwrite_facts_the_agent_just_merged():
    """The lost update: the webhook read the lead before the agent's task merged a fact, then wrote the
    whole JSON back with the changed ManyChat custom field."""
    lead = LeadFactory(qualification_data={"manychat_fields": {"plan": "basic"}})
    stale = Lead.objects.get(pk=lead.pk)  # what the webhook for message 2 loaded
    lead_merge_qualification_data(lead=Lead.objects.get(pk=lead.pk), fields={"budget": "5000"})
    lead_upsert_from_manychat(
        subscriber_id=lead.manychat_subscriber_id,
        channel=lead.channel,
        profile={},
        at=timezone.now(),
        existing=stale,
        custom_fields={"plan": "pro"},
    )
    lead.refresh_from_db()
    assert lead.qualification_data == {"manychat_fields": {"plan": "pro"}, "budget": "5000"}
