"""Outbound webhooks: signed, retried with backoff, logged, delivered once, disabled after a day failing."""

import hashlib
import hmac
import json
from datetime import timedelta

import pytest
from django.utils import timezone

from agent.outcomes import outbound
from agent.outcomes.models import DeliveryState, WebhookAttempt, WebhookDelivery, WebhookSubscription
from leads.models import LeadStatus, Notification
from leads.services import lead_set_status
from tests.factories import LeadFactory
from tests.fakes.base import FakeServer, Reply

pytestmark = pytest.mark.django_db


@pytest.fixture
def receiver():
    server = FakeServer().start()
    yield server
    server.stop()


@pytest.fixture
def subscription(receiver):
    return WebhookSubscription.objects.create(
        name="CRM", url=f"{receiver.url}/hook", events=["lead.booked", "lead.qualified"], secret="s3cret-key"
    )


def _verify(request, secret: str) -> dict:
    """The receiver's side of the documented scheme: HMAC-SHA256 of "<t>.<raw body>"."""
    header = request.headers.get("X-DMAgent-Signature") or request.headers.get("x-dmagent-signature")
    parts = dict(part.split("=", 1) for part in header.split(","))
    expected = hmac.new(secret.encode(), f"{parts['t']}.".encode() + request.body, hashlib.sha256).hexdigest()
    assert hmac.compare_digest(expected, parts["v1"])
    return json.loads(request.body)


def test_fails_twice_then_delivered_once_with_three_attempts(receiver, subscription, settings):
    settings.CELERY_TASK_ALWAYS_EAGER = False  # the task is driven by hand here, as beat would
    lead = LeadFactory(status=LeadStatus.QUALIFIED)
    lead_set_status(lead=lead, status=LeadStatus.BOOKED, source="integration")
    receiver.enqueue(Reply(status=500), Reply(status=500), Reply(status=200))

    assert outbound.outbound_dispatch() == 1
    assert outbound.outbound_dispatch() == 0  # re-reading the log sends nothing twice
    delivery = WebhookDelivery.objects.get()
    for expected in (DeliveryState.PENDING, DeliveryState.PENDING, DeliveryState.DELIVERED):
        assert outbound.webhook_deliver(delivery_id=delivery.pk) == expected
        WebhookDelivery.objects.filter(pk=delivery.pk).update(next_attempt_at=timezone.now())
    assert outbound.webhook_deliver(delivery_id=delivery.pk) == DeliveryState.DELIVERED  # no fourth POST
    assert receiver.calls == 3
    assert list(WebhookAttempt.objects.order_by("number").values_list("status_code", flat=True)) == [
        500,
        500,
        200,
    ]
    body = _verify(receiver.requests[-1], "s3cret-key")
    assert body["event"] == "lead.booked" and body["data"]["lead"]["id"] == lead.pk
    assert body["data"]["to"] == "booked" and body["data"]["source"] == "integration"


def test_backoff_grows_and_retries_are_bounded(receiver, subscription, settings):
    settings.OUTBOUND_WEBHOOK_MAX_ATTEMPTS = 3
    receiver.set_default(Reply(status=503))
    lead = LeadFactory(status=LeadStatus.ENGAGED)
    lead_set_status(lead=lead, status=LeadStatus.QUALIFIED)
    outbound.outbound_dispatch()
    delivery = WebhookDelivery.objects.get()
    gaps = []
    for _ in range(3):
        before = timezone.now()
        outbound.webhook_deliver(delivery_id=delivery.pk)
        delivery.refresh_from_db()
        if delivery.next_attempt_at:
            gaps.append((delivery.next_attempt_at - before).total_seconds())
            WebhookDelivery.objects.filter(pk=delivery.pk).update(next_attempt_at=timezone.now())
    assert delivery.state == DeliveryState.FAILED and delivery.attempts == 3
    assert gaps[0] < gaps[1]  # 30 s, then 60 s
    assert outbound.deliveries_due() == []


def test_events_a_subscription_did_not_ask_for_are_not_sent(receiver, subscription):
    lead = LeadFactory(status=LeadStatus.QUALIFIED)
    lead_set_status(lead=lead, status=LeadStatus.LOST)
    assert outbound.outbound_dispatch() == 0


def test_a_day_of_failures_disables_the_subscription_and_tells_the_admins(receiver, subscription, make_user):
    admin = make_user("admin")
    receiver.set_default(Reply(status=500))
    WebhookSubscription.objects.filter(pk=subscription.pk).update(
        failing_since=timezone.now() - timedelta(hours=25)
    )
    subscription.refresh_from_db()
    delivery = outbound.webhook_send_test(subscription=subscription)
    outbound.webhook_deliver(delivery_id=delivery.pk)
    subscription.refresh_from_db()
    assert not subscription.is_active and "failing since" in subscription.disabled_reason
    assert Notification.objects.filter(recipient=admin, verb="webhooks.disabled").exists()


def test_the_subscriptions_page_adds_one_and_sends_a_test_event(
    client, make_user, receiver, django_capture_on_commit_callbacks
):
    client.force_login(make_user("admin"))
    response = client.post(
        "/dashboard/webhooks/",
        {"action": "create", "name": "Slack", "url": f"{receiver.url}/slack", "events": ["lead.booked"]},
        follow=True,
    )
    assert "Added “Slack”" in response.content.decode()
    subscription = WebhookSubscription.objects.get(name="Slack")
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(
            "/dashboard/webhooks/", {"action": "test", "subscription_id": subscription.pk}, follow=True
        )
    assert "Test event queued" in response.content.decode()
    assert receiver.wait_for_calls(1, timeout=10)
    assert _verify(receiver.requests[0], subscription.secret)["event"] == "test"
    bad = client.post(
        "/dashboard/webhooks/", {"action": "create", "url": "ftp://x", "events": ["lead.booked"]}, follow=True
    )
    assert "url: enter an http" in bad.content.decode()


def test_only_admins_manage_webhooks(client, make_user):
    client.force_login(make_user("manager"))
    assert client.get("/dashboard/webhooks/").status_code == 403
