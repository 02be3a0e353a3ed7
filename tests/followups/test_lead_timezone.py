"""The lead's timezone comes from ManyChat's contact data (for quiet hours) and is stored on the lead."""

import json

import pytest

from agent.payloads import payload_parse
from agent.turn import inbound_store


@pytest.mark.parametrize(
    ("sent", "kept"),
    [
        ("UTC-07", "UTC-07"),
        ("UTC+05:30", "UTC+05:30"),
        ("Europe/Rome", "Europe/Rome"),
        ("<script>", ""),
        ("UTC-07; DROP TABLE", ""),
        (None, ""),
        ("{{timezone}}", ""),
    ],
)
def test_the_contact_timezone_is_parsed(sent, kept):
    body = {"subscriber_id": "77", "text": "hi", "timezone": sent}
    assert payload_parse(raw=json.dumps(body).encode()).timezone == kept


@pytest.mark.django_db
def test_the_timezone_is_stored_on_the_lead_and_never_erased_by_an_empty_one():
    first = payload_parse(
        raw=json.dumps({"subscriber_id": "78", "text": "hi", "timezone": "UTC+02"}).encode()
    )
    lead = inbound_store(inbound=first).lead
    lead.refresh_from_db()
    assert lead.timezone == "UTC+02"
    again = payload_parse(raw=json.dumps({"subscriber_id": "78", "text": "and again"}).encode())
    inbound_store(inbound=again)
    lead.refresh_from_db()
    assert lead.timezone == "UTC+02"
