"""The webhook subscriptions page in headless Chromium (clean console required), at 1366 and 390 px.

An admin adds a subscription pointing at a local receiver, sends a test event from the page, and the receiver
gets exactly one signed POST that verifies with the documented scheme; the delivery log shows it delivered.
"""

import hashlib
import hmac
import json

import pytest

from agent.outcomes.models import DeliveryState, WebhookDelivery, WebhookSubscription
from tests.e2e.conftest import login
from tests.fakes.base import FakeServer

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def receiver():
    server = FakeServer().start()
    yield server
    server.stop()


def _no_sideways_scroll(page, width: int) -> None:
    page.set_viewport_size({"width": width, "height": 900})
    overflow = page.evaluate("document.documentElement.scrollWidth - document.documentElement.clientWidth")
    assert overflow <= 0, f"the webhooks page scrolls sideways at {width} px"


def test_admin_adds_a_subscription_and_sends_a_test_event(demo, new_page, shot, receiver, settings):
    settings.CELERY_TASK_ALWAYS_EAGER = True  # no worker here: the delivery task runs on commit
    page = new_page("admin")
    login(page, "admin")
    page.goto("/dashboard/webhooks/")
    page.get_by_label("Name").fill("CRM")
    page.get_by_label("URL").fill(f"{receiver.url}/crm")
    page.locator("input[name=events][value='lead.booked']").check()
    page.get_by_role("button", name="Add subscription").click()
    page.get_by_test_id("subscription").filter(has_text="CRM").wait_for()
    subscription = WebhookSubscription.objects.get(name="CRM")
    assert subscription.events == ["lead.booked"]

    page.get_by_test_id("send-test").click()
    page.get_by_test_id("delivery").first.wait_for()
    assert receiver.wait_for_calls(1, timeout=15)
    request = receiver.requests[0]
    header = request.headers.get("X-DMAgent-Signature") or request.headers.get("x-dmagent-signature")
    parts = dict(part.split("=", 1) for part in header.split(","))
    expected = hmac.new(
        subscription.secret.encode(), f"{parts['t']}.".encode() + request.body, hashlib.sha256
    ).hexdigest()
    assert hmac.compare_digest(expected, parts["v1"])
    assert json.loads(request.body)["event"] == "test"
    assert len(receiver.requests) == 1

    page.reload()
    delivery = WebhookDelivery.objects.get(subscription=subscription)
    assert delivery.state == DeliveryState.DELIVERED and delivery.attempts == 1
    assert "HTTP 200" in page.get_by_test_id("delivery").first.inner_text()
    for width in (1366, 390):
        _no_sideways_scroll(page, width)
        shot(page, f"webhooks-{width}")
