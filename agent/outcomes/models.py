"""Sales outcomes: bookings received from Cal.com and Calendly, and events sent to the team's other tools."""

from django.conf import settings
from django.db import models
from django.db.models import Q


class BookingProvider(models.TextChoices):
    CALCOM = "calcom", "Cal.com"
    CALENDLY = "calendly", "Calendly"


class BookingState(models.TextChoices):
    BOOKED = "booked", "Booked"
    CANCELLED = "cancelled", "Cancelled"


class BookingEvent(models.Model):
    """One booking webhook as received: deduplicated on (provider, delivery key), matched to a lead."""

    provider = models.CharField(max_length=16, choices=BookingProvider.choices)
    # Identifies one delivery of one event: a replay of the same webhook has the same key.
    delivery_key = models.CharField(max_length=200)
    booking_uid = models.CharField(max_length=200)
    state = models.CharField(max_length=16, choices=BookingState.choices)
    occurred_at = models.DateTimeField()
    lead = models.ForeignKey("leads.Lead", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    matched_by = models.CharField(max_length=16, blank=True, default="")
    # Applied: it moved the lead (False for a replay, an older event than one already applied, or no lead).
    applied = models.BooleanField(default=False)
    received_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        db_table = "booking_events"
        ordering = ["-received_at", "-id"]
        constraints = [
            models.UniqueConstraint(fields=["provider", "delivery_key"], name="booking_event_once"),
            models.CheckConstraint(
                condition=Q(provider__in=BookingProvider.values), name="booking_provider_valid"
            ),
            models.CheckConstraint(condition=Q(state__in=BookingState.values), name="booking_state_valid"),
            models.CheckConstraint(
                condition=Q(matched_by__in=["", "subscriber", "email", "phone"]),
                name="booking_matched_by_valid",
            ),
        ]
        indexes = [
            models.Index(fields=["provider", "booking_uid", "occurred_at"], name="booking_uid_time_idx")
        ]

    def __str__(self) -> str:
        return f"{self.get_provider_display()} {self.booking_uid} {self.state}"


class OutboundEvent(models.TextChoices):
    QUALIFIED = "lead.qualified", "Lead qualified"
    BOOKED = "lead.booked", "Lead booked a call"
    WON = "lead.won", "Deal won"
    HANDED_OFF = "lead.handed_off", "Lead handed to a person"
    WAITING = "lead.waiting", "Lead waiting for a person"
    TEST = "test", "Test event"


class WebhookSubscription(models.Model):
    """A URL of the team's (CRM, Zapier, Make, Slack) that receives signed events."""

    name = models.CharField(max_length=100)
    url = models.URLField(max_length=500)
    events = models.JSONField(default=list, help_text='Event names, e.g. ["lead.booked"].')
    secret = models.CharField(max_length=100, help_text="Signs every delivery (HMAC-SHA256).")
    is_active = models.BooleanField(default=True)
    disabled_reason = models.CharField(max_length=300, blank=True, default="")
    failing_since = models.DateTimeField(null=True, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        db_table = "webhook_subscriptions"
        ordering = ["name", "id"]
        constraints = [models.CheckConstraint(condition=~Q(secret=""), name="webhook_secret_required")]

    def __str__(self) -> str:
        return self.name


class DeliveryState(models.TextChoices):
    PENDING = "pending", "Pending"
    DELIVERED = "delivered", "Delivered"
    FAILED = "failed", "Failed (retries used up)"


class WebhookDelivery(models.Model):
    """One event for one subscription; delivered at most once (a unique source row per subscription)."""

    subscription = models.ForeignKey(WebhookSubscription, on_delete=models.CASCADE, related_name="deliveries")
    event = models.CharField(max_length=32)
    # The activity that caused it ("test-<uuid>" for a test event): the same source is never sent twice.
    source_key = models.CharField(max_length=64)
    payload = models.JSONField()
    state = models.CharField(max_length=16, choices=DeliveryState.choices, default=DeliveryState.PENDING)
    attempts = models.PositiveSmallIntegerField(default=0)
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    delivered_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        db_table = "webhook_deliveries"
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(fields=["subscription", "source_key"], name="webhook_delivery_once"),
            models.CheckConstraint(
                condition=Q(state__in=DeliveryState.values), name="webhook_delivery_state_valid"
            ),
        ]
        indexes = [models.Index(fields=["state", "next_attempt_at"], name="webhook_delivery_due_idx")]

    def __str__(self) -> str:
        return f"{self.event} to {self.subscription_id} ({self.state})"


class WebhookAttempt(models.Model):
    """The delivery log: one row per HTTP attempt with its response code."""

    delivery = models.ForeignKey(WebhookDelivery, on_delete=models.CASCADE, related_name="log")
    number = models.PositiveSmallIntegerField()
    status_code = models.PositiveSmallIntegerField(null=True, blank=True)
    error = models.CharField(max_length=300, blank=True, default="")
    duration_ms = models.PositiveIntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        db_table = "webhook_attempts"
        ordering = ["delivery_id", "number"]
        constraints = [
            models.UniqueConstraint(fields=["delivery", "number"], name="webhook_attempt_number_once")
        ]

    def __str__(self) -> str:
        return f"attempt {self.number}: {self.status_code or self.error}"


class OutboundCursor(models.Model):
    """How far the dispatcher has read the activity log (one row)."""

    name = models.CharField(max_length=32, unique=True)
    last_activity_id = models.BigIntegerField(default=0)

    class Meta:
        db_table = "outbound_cursors"

    def __str__(self) -> str:
        return f"{self.name} at {self.last_activity_id}"
