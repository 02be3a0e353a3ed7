"""Outbound webhooks: the funnel's events sent, signed, to the team's other tools.

The dispatcher reads the activity log from a cursor (so a step made by the agent, a person or an
integration is sent the same way, and `leads` needs to know nothing about subscribers), turns each relevant
activity into one delivery per subscription that wants it (a unique row, so a re-read never sends twice),
and a Celery task posts it.

Signature, like Stripe's: `X-DMAgent-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>.<body>"
with the subscription's secret>`; receivers recompute it over the raw body and refuse old timestamps.
Retries: exponential backoff (30 s, 1, 2, 4 ... minutes, at most `OUTBOUND_WEBHOOK_MAX_ATTEMPTS`), each
attempt logged with its response code; a subscription failing for `OUTBOUND_WEBHOOK_DISABLE_AFTER_HOURS`
(24) is disabled and the admins are notified.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
import uuid
from datetime import timedelta
from typing import Any

import httpx
from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import F
from django.utils import timezone

from agent.outcomes.models import (
    DeliveryState,
    OutboundCursor,
    OutboundEvent,
    WebhookAttempt,
    WebhookDelivery,
    WebhookSubscription,
)
from config.enqueue import enqueue_on_commit
from leads import roles
from leads import services as lead_services
from leads.models import Activity, LeadStatus
from leads.selectors import users_with_permission

SIGNATURE_HEADER = "X-DMAgent-Signature"
CURSOR = "outbound-webhooks"


def sign(*, secret: str, body: bytes, timestamp: int) -> str:
    digest = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={digest}"


def event_for_activity(activity: Activity) -> OutboundEvent | None:
    data = activity.data or {}
    if activity.verb == "lead.status_changed":
        return {
            LeadStatus.QUALIFIED: OutboundEvent.QUALIFIED,
            LeadStatus.BOOKED: OutboundEvent.BOOKED,
            LeadStatus.CONVERTED: OutboundEvent.WON,
        }.get(data.get("to"))
    if activity.verb == "lead.handed_off":
        return OutboundEvent.HANDED_OFF
    if activity.verb == "agent.needs_human":  # the agent could not answer: the lead waits for a person
        return OutboundEvent.WAITING
    return None


def event_payload(*, event: str, activity: Activity | None) -> dict[str, Any]:
    """The documented body (OpenAPI `OutboundWebhookEvent`): ids and the step, never message text."""
    body: dict[str, Any] = {"id": str(uuid.uuid4()), "event": event, "created_at": timezone.now().isoformat()}
    if activity is None:
        body["data"] = {"test": True}
        return body
    lead = activity.lead
    data = activity.data or {}
    body["occurred_at"] = activity.created_at.isoformat()
    body["data"] = {
        "lead": {
            "id": lead.pk if lead else None,
            "subscriber_id": lead.manychat_subscriber_id if lead else "",
            "name": lead.display_name if lead else "",
            "channel": lead.channel if lead else "",
            "status": lead.status if lead else "",
            "dashboard_url": f"/dashboard/leads/{lead.pk}/" if lead else "",
        },
        "from": data.get("from", ""),
        "to": data.get("to", ""),
        "source": data.get("source", ""),
        "reason": str(data.get("reason", ""))[:300],
    }
    return body


def _cursor() -> OutboundCursor:
    cursor, _ = OutboundCursor.objects.select_for_update().get_or_create(name=CURSOR)
    return cursor


@transaction.atomic
def outbound_dispatch(*, limit: int = 500) -> int:
    """Read new activities, create the deliveries they call for, queue them; returns deliveries created."""
    cursor = _cursor()
    subscriptions = list(WebhookSubscription.objects.filter(is_active=True))
    activities = list(
        Activity.objects.filter(pk__gt=cursor.last_activity_id).select_related("lead").order_by("pk")[:limit]
    )
    created = 0
    for activity in activities:
        event = event_for_activity(activity)
        if event is None:
            continue
        for subscription in subscriptions:
            if event.value not in subscription.events:
                continue
            delivery = _delivery_create(
                subscription=subscription,
                event=event.value,
                source_key=f"activity-{activity.pk}",
                activity=activity,
            )
            if delivery is not None:
                created += 1
    if activities:
        cursor.last_activity_id = activities[-1].pk
        cursor.save(update_fields=["last_activity_id"])
    return created


def _delivery_create(
    *, subscription: WebhookSubscription, event: str, source_key: str, activity: Activity | None
) -> WebhookDelivery | None:
    try:
        with transaction.atomic():
            delivery = WebhookDelivery.objects.create(
                subscription=subscription,
                event=event,
                source_key=source_key,
                payload=event_payload(event=event, activity=activity),
                next_attempt_at=timezone.now(),
            )
    except IntegrityError:
        return None
    from agent.outcomes import tasks

    enqueue_on_commit(tasks.deliver_webhook, delivery.pk)
    return delivery


@transaction.atomic
def webhook_send_test(*, subscription: WebhookSubscription) -> WebhookDelivery:
    delivery = _delivery_create(
        subscription=subscription,
        event=OutboundEvent.TEST.value,
        source_key=f"test-{uuid.uuid4().hex}",
        activity=None,
    )
    assert delivery is not None  # a fresh key cannot collide
    return delivery


def _backoff(attempts: int) -> timedelta:
    return timedelta(seconds=min(30 * 2 ** max(0, attempts - 1), 6 * 3600))


def webhook_deliver(*, delivery_id: int, client: httpx.Client | None = None) -> DeliveryState:
    """One attempt; safe to run twice (a delivered or failed delivery is left alone)."""
    with transaction.atomic():
        delivery = (
            WebhookDelivery.objects.select_for_update(skip_locked=True)
            .select_related("subscription")
            .filter(pk=delivery_id)
            .first()
        )
        if delivery is None:
            return DeliveryState.PENDING  # another worker holds it
        if delivery.state != DeliveryState.PENDING:
            return DeliveryState(delivery.state)
        number = delivery.attempts + 1
        WebhookDelivery.objects.filter(pk=delivery.pk).update(attempts=F("attempts") + 1)
    subscription = delivery.subscription
    body = json.dumps(delivery.payload, separators=(",", ":"), ensure_ascii=False).encode()
    headers = {
        "Content-Type": "application/json",
        "User-Agent": "dm-sales-agent-webhooks/1",
        SIGNATURE_HEADER: sign(secret=subscription.secret, body=body, timestamp=int(time.time())),
        "X-DMAgent-Event": delivery.event,
        "X-DMAgent-Delivery": str(delivery.pk),
    }
    started = time.monotonic()
    status_code, error = None, ""
    own_client = client is None
    client = client or httpx.Client(timeout=settings.OUTBOUND_WEBHOOK_TIMEOUT_SECONDS, follow_redirects=False)
    try:
        response = client.post(subscription.url, content=body, headers=headers)
        status_code = response.status_code
    except httpx.HTTPError as exc:
        error = f"{type(exc).__name__}: {exc}"[:300]
    finally:
        if own_client:
            client.close()
    duration = int((time.monotonic() - started) * 1000)
    ok = status_code is not None and 200 <= status_code < 300
    with transaction.atomic():
        WebhookAttempt.objects.create(
            delivery=delivery, number=number, status_code=status_code, error=error, duration_ms=duration
        )
        now = timezone.now()
        if ok:
            WebhookDelivery.objects.filter(pk=delivery.pk).update(
                state=DeliveryState.DELIVERED, delivered_at=now, next_attempt_at=None
            )
            WebhookSubscription.objects.filter(pk=subscription.pk).update(failing_since=None)
            return DeliveryState.DELIVERED
        failing_since = subscription.failing_since or now
        WebhookSubscription.objects.filter(pk=subscription.pk, failing_since__isnull=True).update(
            failing_since=now
        )
        if now - failing_since >= timedelta(hours=settings.OUTBOUND_WEBHOOK_DISABLE_AFTER_HOURS):
            _disable(subscription=subscription, reason=f"failing since {failing_since:%Y-%m-%d %H:%M} UTC")
        if number >= settings.OUTBOUND_WEBHOOK_MAX_ATTEMPTS:
            WebhookDelivery.objects.filter(pk=delivery.pk).update(
                state=DeliveryState.FAILED, next_attempt_at=None
            )
            return DeliveryState.FAILED
        WebhookDelivery.objects.filter(pk=delivery.pk).update(next_attempt_at=now + _backoff(number))
    return DeliveryState.PENDING


def _disable(*, subscription: WebhookSubscription, reason: str) -> None:
    updated = WebhookSubscription.objects.filter(pk=subscription.pk, is_active=True).update(
        is_active=False, disabled_reason=reason[:300]
    )
    if updated:
        lead_services.notification_notify(
            recipients=users_with_permission(perm=roles.PERM_MANAGE_WEBHOOKS),
            verb="webhooks.disabled",
            message=f"Webhook “{subscription.name}” was disabled: {reason}",
            url="/dashboard/webhooks/",
        )


def deliveries_due(*, limit: int = 200) -> list[int]:
    return list(
        WebhookDelivery.objects.filter(
            state=DeliveryState.PENDING, next_attempt_at__lte=timezone.now(), subscription__is_active=True
        )
        .order_by("next_attempt_at")
        .values_list("pk", flat=True)[:limit]
    )
