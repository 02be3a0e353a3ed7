"""An opt-out is recorded when the lead's message arrives (the turn's store step), not only when the beat
next looks at the lead: a "stop" holds even for a lead the beat never picks up."""

import json

import pytest

from agent.payloads import payload_parse
from agent.turn import inbound_store
from leads.models import Activity

pytestmark = pytest.mark.django_db


def _store(text: str, subscriber: str = "501"):
    return inbound_store(
        inbound=payload_parse(raw=json.dumps({"subscriber_id": subscriber, "text": text}).encode())
    )


def test_a_stop_message_is_recorded_at_once():
    _store("Hi there")
    stored = _store("STOP!")
    lead = stored.lead
    lead.refresh_from_db()
    assert lead.followups_opted_out_at is not None
    assert list(Activity.objects.filter(lead=lead, verb="lead.opted_out").values_list("data", flat=True)) == [
        {"message_id": stored.message.pk}
    ]
    # Once: a second "stop" changes nothing.
    first = lead.followups_opted_out_at
    _store("unsubscribe")
    lead.refresh_from_db()
    assert lead.followups_opted_out_at == first
    assert Activity.objects.filter(lead=lead, verb="lead.opted_out").count() == 1


def test_other_messages_write_nothing():
    stored = _store("don't stop telling me about the plans, what does the yearly one cost?")
    stored.lead.refresh_from_db()
    assert stored.lead.followups_opted_out_at is None
    assert not Activity.objects.filter(verb="lead.opted_out").exists()
