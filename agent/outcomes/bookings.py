"""Booking webhooks from Cal.com and Calendly: verified, deduplicated, matched to a lead, applied once.

Signatures, as each provider documents them:
- Cal.com: `X-Cal-Signature-256` is the hex HMAC-SHA256 of the raw body with the webhook's secret.
- Calendly: `Calendly-Webhook-Signature: t=<unix>,v1=<hex>` is the HMAC-SHA256 of "<t>.<raw body>" with the
  subscription's signing key; a timestamp older than `BOOKING_SIGNATURE_TOLERANCE_SECONDS` (180) is refused
  so a captured request cannot be replayed later.

Matching: the booking link the agent offers carries the subscriber id (Cal.com `metadata[subscriber]`,
Calendly `utm_content`); without it, the invitee's email, then their phone.

A booking moves the lead to "booked"; its cancellation moves it back to where it was before (unless another
booking of the lead is still standing); events of one booking apply in the order they happened, so a created
event that arrives after its own cancellation does not book the lead again. A replayed delivery changes
nothing.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import time
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import Q
from django.utils import timezone
from django.utils.dateparse import parse_datetime
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from agent.outcomes.models import BookingEvent, BookingProvider, BookingState
from leads import services as lead_services
from leads.models import Lead, LeadStatus, StepSource


class BookingRefused(Exception):
    def __init__(self, message: str, *, status: int, field: str = "non_field_errors") -> None:
        super().__init__(message)
        self.message, self.status, self.field = message, status, field


# --- Verification ------------------------------------------------------------------------------------------


def calcom_verify(*, body: bytes, signature: str, secret: str) -> None:
    if not secret:
        raise BookingRefused("Cal.com bookings are not set up (CALCOM_WEBHOOK_SECRET)", status=503)
    expected = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    if not signature or not hmac.compare_digest(expected, signature.strip().lower()):
        raise BookingRefused(
            "invalid or missing X-Cal-Signature-256", status=401, field="X-Cal-Signature-256"
        )


def calendly_verify(*, body: bytes, header: str, secret: str, now: float | None = None) -> None:
    if not secret:
        raise BookingRefused("Calendly bookings are not set up (CALENDLY_WEBHOOK_SIGNING_KEY)", status=503)
    parts = dict(part.split("=", 1) for part in header.split(",") if "=" in part)
    stamp, given = parts.get("t", ""), parts.get("v1", "")
    field = "Calendly-Webhook-Signature"
    if not stamp.isdigit() or not given:
        raise BookingRefused("invalid or missing Calendly-Webhook-Signature", status=401, field=field)
    expected = hmac.new(secret.encode(), f"{stamp}.".encode() + body, hashlib.sha256).hexdigest()
    if not hmac.compare_digest(expected, given.strip().lower()):
        raise BookingRefused("invalid Calendly-Webhook-Signature", status=401, field=field)
    age = (now if now is not None else time.time()) - int(stamp)
    if abs(age) > settings.BOOKING_SIGNATURE_TOLERANCE_SECONDS:
        raise BookingRefused("Calendly-Webhook-Signature timestamp is too old", status=401, field=field)


# --- The two bodies, one typed model each -------------------------------------------------------------------


class _Attendee(BaseModel):
    model_config = ConfigDict(extra="ignore")
    email: str = ""
    name: str = ""
    phoneNumber: str = ""  # noqa: N815 - Cal.com's field name


class _CalcomPayload(BaseModel):
    model_config = ConfigDict(extra="ignore")
    uid: str = Field(min_length=1, max_length=200)
    attendees: list[_Attendee] = Field(default_factory=list)
    metadata: dict[str, Any] = Field(default_factory=dict)
    responses: dict[str, Any] = Field(default_factory=dict)


class CalcomBody(BaseModel):
    model_config = ConfigDict(extra="ignore")
    triggerEvent: str  # noqa: N815
    createdAt: str = ""  # noqa: N815
    payload: _CalcomPayload


class _CalendlyTracking(BaseModel):
    model_config = ConfigDict(extra="ignore")
    utm_content: str | None = None


class _CalendlyInvitee(BaseModel):
    model_config = ConfigDict(extra="ignore")
    uri: str = Field(min_length=1, max_length=300)
    email: str = ""
    text_reminder_number: str | None = None
    tracking: _CalendlyTracking = Field(default_factory=_CalendlyTracking)
    updated_at: str = ""


class CalendlyBody(BaseModel):
    model_config = ConfigDict(extra="ignore")
    event: str
    created_at: str = ""
    payload: _CalendlyInvitee


@dataclass(frozen=True)
class BookingNotice:
    provider: BookingProvider
    booking_uid: str
    state: BookingState
    occurred_at: datetime
    delivery_key: str
    subscriber_id: str
    email: str
    phone: str


_CALCOM_STATES = {
    "BOOKING_CREATED": BookingState.BOOKED,
    "BOOKING_RESCHEDULED": BookingState.BOOKED,
    "BOOKING_CANCELLED": BookingState.CANCELLED,
}
_CALENDLY_STATES = {"invitee.created": BookingState.BOOKED, "invitee.canceled": BookingState.CANCELLED}


def _when(raw: str) -> datetime:
    parsed = parse_datetime(raw) if raw else None
    if parsed is None:
        return timezone.now()
    return parsed if timezone.is_aware(parsed) else timezone.make_aware(parsed, timezone.utc)


def _parse(model: type[BaseModel], body: bytes) -> Any:
    try:
        return model.model_validate(json.loads(body))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise BookingRefused(f"body is not JSON: {exc}", status=400) from exc
    except ValidationError as exc:
        first = exc.errors()[0]
        field = ".".join(str(p) for p in first["loc"]) or "non_field_errors"
        raise BookingRefused(f"{field}: {first['msg']}", status=400, field=field) from exc


def calcom_notice(*, body: bytes) -> BookingNotice | None:
    """None for a trigger we do not act on (MEETING_ENDED, PING...), which is acknowledged and ignored."""
    parsed: CalcomBody = _parse(CalcomBody, body)
    state = _CALCOM_STATES.get(parsed.triggerEvent)
    if state is None:
        return None
    attendee = parsed.payload.attendees[0] if parsed.payload.attendees else _Attendee()
    subscriber = str(
        parsed.payload.metadata.get("subscriber") or parsed.payload.responses.get("subscriber") or ""
    )
    return BookingNotice(
        provider=BookingProvider.CALCOM,
        booking_uid=parsed.payload.uid,
        state=state,
        occurred_at=_when(parsed.createdAt),
        delivery_key=hashlib.sha256(body).hexdigest(),
        subscriber_id=subscriber,
        email=attendee.email,
        phone=attendee.phoneNumber,
    )


def calendly_notice(*, body: bytes) -> BookingNotice | None:
    parsed: CalendlyBody = _parse(CalendlyBody, body)
    state = _CALENDLY_STATES.get(parsed.event)
    if state is None:
        return None
    invitee = parsed.payload
    return BookingNotice(
        provider=BookingProvider.CALENDLY,
        booking_uid=invitee.uri,
        state=state,
        occurred_at=_when(parsed.created_at or invitee.updated_at),
        delivery_key=hashlib.sha256(body).hexdigest(),
        subscriber_id=invitee.tracking.utm_content or "",
        email=invitee.email,
        phone=invitee.text_reminder_number or "",
    )


# --- Matching and applying ---------------------------------------------------------------------------------


def _digits(value: str) -> str:
    return re.sub(r"\D", "", value or "")


def booking_match_lead(*, notice: BookingNotice) -> tuple[Lead | None, str]:
    if notice.subscriber_id:
        lead = Lead.objects.filter(manychat_subscriber_id=notice.subscriber_id).first()
        if lead is not None:
            return lead, "subscriber"
    if notice.email:
        lead = Lead.objects.filter(email__iexact=notice.email.strip()).order_by("-last_message_at").first()
        if lead is not None:
            return lead, "email"
    digits = _digits(notice.phone)
    if len(digits) >= 8:
        for lead in (
            Lead.objects.exclude(phone="")
            .filter(phone__contains=digits[-6:])
            .order_by("-last_message_at")[:20]
        ):
            if _digits(lead.phone).endswith(digits[-8:]):
                return lead, "phone"
    return None, ""


@transaction.atomic
def booking_record(*, notice: BookingNotice) -> BookingEvent:
    """Store the event once and move the lead if it is the newest word on that booking."""
    lead, matched_by = booking_match_lead(notice=notice)
    try:
        with transaction.atomic():
            event = BookingEvent.objects.create(
                provider=notice.provider,
                delivery_key=notice.delivery_key,
                booking_uid=notice.booking_uid,
                state=notice.state,
                occurred_at=notice.occurred_at,
                lead=lead,
                matched_by=matched_by,
            )
    except IntegrityError:
        return BookingEvent.objects.get(provider=notice.provider, delivery_key=notice.delivery_key)
    if lead is None:
        return event
    lead = Lead.objects.select_for_update().get(pk=lead.pk)
    newer = BookingEvent.objects.filter(
        provider=notice.provider,
        booking_uid=notice.booking_uid,
        applied=True,
        occurred_at__gt=notice.occurred_at,
    ).exists()
    if newer:
        return event  # an older word on this booking than one already applied: recorded, not applied
    standing = _standing_bookings(lead=lead, except_uid=notice.booking_uid)
    detail = {"booking": notice.booking_uid[:200], "provider": notice.provider.value}
    if notice.state is BookingState.BOOKED:
        # A won deal stays won; a lost lead that books is back in the funnel.
        if lead.status not in (LeadStatus.BOOKED, LeadStatus.CONVERTED):
            lead_services.lead_set_status(
                lead=lead,
                status=LeadStatus.BOOKED,
                reason=f"Booked a call through {notice.provider.label}.",
                source=StepSource.INTEGRATION,
                data=detail,
            )
    elif lead.status == LeadStatus.BOOKED and not standing:
        lead_services.lead_set_status(
            lead=lead,
            status=LeadStatus.QUALIFIED,
            reason=f"Cancelled the call booked through {notice.provider.label}.",
            source=StepSource.INTEGRATION,
            data=detail,
        )
    lead_services.activity_record(
        verb=f"booking.{notice.state.value}", lead=lead, data={**detail, "matched_by": matched_by}
    )
    BookingEvent.objects.filter(pk=event.pk).update(applied=True)
    event.applied = True
    return event


def _standing_bookings(*, lead: Lead, except_uid: str) -> bool:
    """Another booking of this lead whose newest applied event is a booking (not a cancellation)."""
    uids = (
        BookingEvent.objects.filter(lead=lead, applied=True)
        .exclude(booking_uid=except_uid)
        .values_list("booking_uid", flat=True)
        .distinct()
    )
    for uid in uids:
        latest = (
            BookingEvent.objects.filter(Q(lead=lead) & Q(booking_uid=uid) & Q(applied=True))
            .order_by("-occurred_at", "-id")
            .values_list("state", flat=True)
            .first()
        )
        if latest == BookingState.BOOKED:
            return True
    return False


def booking_link_for(*, subscriber_id: str) -> str:
    """The team's booking link carrying the subscriber, so the booking comes back matched."""
    base = settings.AGENT_BOOKING_URL
    if not base:
        return ""
    from urllib.parse import urlencode

    key = "utm_content" if "calendly.com" in base else "metadata[subscriber]"
    return f"{base}{'&' if '?' in base else '?'}{urlencode({key: subscriber_id})}"
