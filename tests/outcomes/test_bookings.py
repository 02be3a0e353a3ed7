"""Booking webhooks from Cal.com and Calendly, over the real endpoints with real signatures."""

import hashlib
import hmac
import json
import time

import pytest

from agent.outcomes.models import BookingEvent
from leads.models import Activity, Lead, LeadStatus
from tests.factories import LeadFactory

pytestmark = pytest.mark.django_db
CAL_SECRET = "cal-test-secret"
CALENDLY_KEY = "calendly-test-key"


@pytest.fixture(autouse=True)
def _secrets(settings):
    settings.CALCOM_WEBHOOK_SECRET = CAL_SECRET
    settings.CALENDLY_WEBHOOK_SIGNING_KEY = CALENDLY_KEY


def calcom(client, trigger, uid, *, created_at, subscriber="", email="", secret=CAL_SECRET, body=None):
    payload = body or {
        "triggerEvent": trigger,
        "createdAt": created_at,
        "payload": {
            "uid": uid,
            "attendees": [{"email": email, "name": "Ana"}],
            "metadata": {"subscriber": subscriber},
        },
    }
    raw = json.dumps(payload).encode()
    signature = hmac.new(secret.encode(), raw, hashlib.sha256).hexdigest()
    return client.post(
        "/webhooks/calcom/", data=raw, content_type="application/json", HTTP_X_CAL_SIGNATURE_256=signature
    )


def calendly(client, event, uri, *, created_at, utm="", email="", stamp=None, key=CALENDLY_KEY):
    raw = json.dumps(
        {
            "event": event,
            "created_at": created_at,
            "payload": {"uri": uri, "email": email, "tracking": {"utm_content": utm or None}},
        }
    ).encode()
    stamp = int(time.time()) if stamp is None else stamp
    digest = hmac.new(key.encode(), f"{stamp}.".encode() + raw, hashlib.sha256).hexdigest()
    return client.post(
        "/webhooks/calendly/",
        data=raw,
        content_type="application/json",
        HTTP_CALENDLY_WEBHOOK_SIGNATURE=f"t={stamp},v1={digest}",
    )


def _booking_activities(lead):
    return list(
        Activity.objects.filter(lead=lead, verb__startswith="booking.")
        .order_by("id")
        .values_list("verb", flat=True)
    )


def test_a_replayed_calcom_booking_marks_the_lead_booked_once(client):
    lead = LeadFactory(manychat_subscriber_id="31415926", status=LeadStatus.QUALIFIED)
    first = calcom(
        client, "BOOKING_CREATED", "bk-1", created_at="2026-12-01T10:00:00Z", subscriber="31415926"
    )
    again = calcom(
        client, "BOOKING_CREATED", "bk-1", created_at="2026-12-01T10:00:00Z", subscriber="31415926"
    )
    assert first.status_code == again.status_code == 200
    assert first.json()["matched_by"] == "subscriber" and first.json()["event_id"] == again.json()["event_id"]
    lead.refresh_from_db()
    assert lead.status == LeadStatus.BOOKED
    assert BookingEvent.objects.count() == 1
    assert _booking_activities(lead) == ["booking.booked"]
    changed = Activity.objects.get(lead=lead, verb="lead.status_changed")
    assert changed.data["to"] == "booked" and changed.data["source"] == "integration"


def test_a_bad_signature_gets_401_and_changes_nothing(client):
    lead = LeadFactory(manychat_subscriber_id="27182818", status=LeadStatus.QUALIFIED)
    response = calcom(
        client,
        "BOOKING_CREATED",
        "bk-2",
        created_at="2026-12-01T10:00:00Z",
        subscriber="27182818",
        secret="wrong",
    )
    assert response.status_code == 401 and response.json()["field"] == "X-Cal-Signature-256"
    lead.refresh_from_db()
    assert lead.status == LeadStatus.QUALIFIED and not BookingEvent.objects.exists()
    missing = client.post("/webhooks/calcom/", data=b"{}", content_type="application/json")
    assert missing.status_code == 401


def test_booked_cancelled_rebooked_leaves_the_lead_booked_with_three_activities(client):
    lead = LeadFactory(manychat_subscriber_id="16180339", status=LeadStatus.QUALIFIED)
    calcom(client, "BOOKING_CREATED", "bk-3", created_at="2026-12-01T10:00:00Z", subscriber="16180339")
    calcom(client, "BOOKING_CANCELLED", "bk-3", created_at="2026-12-01T11:00:00Z", subscriber="16180339")
    lead.refresh_from_db()
    assert lead.status == LeadStatus.QUALIFIED
    calcom(client, "BOOKING_CREATED", "bk-4", created_at="2026-12-01T12:00:00Z", subscriber="16180339")
    lead.refresh_from_db()
    assert lead.status == LeadStatus.BOOKED
    assert _booking_activities(lead) == ["booking.booked", "booking.cancelled", "booking.booked"]


def test_out_of_order_the_older_created_does_not_rebook_after_its_cancellation(client):
    lead = LeadFactory(manychat_subscriber_id="14142135", status=LeadStatus.QUALIFIED)
    calcom(client, "BOOKING_CANCELLED", "bk-5", created_at="2026-12-01T11:00:00Z", subscriber="14142135")
    calcom(client, "BOOKING_CREATED", "bk-5", created_at="2026-12-01T10:00:00Z", subscriber="14142135")
    lead.refresh_from_db()
    assert lead.status == LeadStatus.QUALIFIED
    assert BookingEvent.objects.filter(applied=False).count() == 1


def test_calendly_signature_tolerance_and_matching_by_email(client):
    lead = LeadFactory(email="ana@example.org", status=LeadStatus.ENGAGED)
    stale = calendly(
        client,
        "invitee.created",
        "https://api.calendly.com/i/1",
        created_at="2026-12-01T10:00:00Z",
        email="ana@example.org",
        stamp=int(time.time()) - 3600,
    )
    assert stale.status_code == 401 and "too old" in stale.json()["error"]
    wrong = calendly(
        client,
        "invitee.created",
        "https://api.calendly.com/i/1",
        created_at="2026-12-01T10:00:00Z",
        email="ana@example.org",
        key="wrong",
    )
    assert wrong.status_code == 401
    ok = calendly(
        client,
        "invitee.created",
        "https://api.calendly.com/i/1",
        created_at="2026-12-01T10:00:00Z",
        email="ANA@example.org",
    )
    assert ok.status_code == 200 and ok.json()["matched_by"] == "email"
    lead.refresh_from_db()
    assert lead.status == LeadStatus.BOOKED


def test_a_won_lead_stays_won_and_unknown_triggers_are_acknowledged(client):
    lead = LeadFactory(manychat_subscriber_id="11235813", status=LeadStatus.CONVERTED)
    calcom(client, "BOOKING_CREATED", "bk-6", created_at="2026-12-01T10:00:00Z", subscriber="11235813")
    lead.refresh_from_db()
    assert lead.status == LeadStatus.CONVERTED
    ignored = calcom(client, "MEETING_ENDED", "bk-6", created_at="2026-12-01T10:00:00Z")
    assert ignored.status_code == 200 and ignored.json() == {"status": "ignored"}


def test_bad_bodies_are_400_naming_the_field(client):
    raw = b'{"triggerEvent": "BOOKING_CREATED", "payload": {}}'
    signature = hmac.new(CAL_SECRET.encode(), raw, hashlib.sha256).hexdigest()
    response = client.post(
        "/webhooks/calcom/", data=raw, content_type="application/json", HTTP_X_CAL_SIGNATURE_256=signature
    )
    assert response.status_code == 400 and response.json()["field"] == "payload.uid"
    assert not BookingEvent.objects.exists()


def test_an_unmatched_booking_is_recorded_without_a_lead(client):
    response = calcom(
        client, "BOOKING_CREATED", "bk-7", created_at="2026-12-01T10:00:00Z", email="nobody@example.org"
    )
    assert response.status_code == 200 and response.json()["lead_id"] is None
    assert Lead.objects.filter(status=LeadStatus.BOOKED).count() == 0


def test_booking_setup_missing_is_503(client, settings):
    settings.CALCOM_WEBHOOK_SECRET = ""
    assert calcom(client, "BOOKING_CREATED", "bk-8", created_at="2026-12-01T10:00:00Z").status_code == 503
