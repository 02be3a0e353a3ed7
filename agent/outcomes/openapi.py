"""The outbound webhook bodies, documented in the OpenAPI schema (OpenAPI 3.1 `webhooks`)."""

from drf_spectacular.utils import OpenApiExample, OpenApiWebhook, extend_schema
from rest_framework import serializers

from agent.outcomes.models import OutboundEvent


class OutboundLeadSerializer(serializers.Serializer):
    id = serializers.IntegerField(allow_null=True)
    subscriber_id = serializers.CharField()
    name = serializers.CharField()
    channel = serializers.CharField()
    status = serializers.CharField()
    dashboard_url = serializers.CharField()


class OutboundDataSerializer(serializers.Serializer):
    lead = OutboundLeadSerializer()
    to = serializers.CharField(help_text="The lead's status after the step (status events).")
    source = serializers.ChoiceField(choices=["agent", "person", "integration", ""])
    reason = serializers.CharField()


class OutboundWebhookEventSerializer(serializers.Serializer):
    id = serializers.CharField(help_text="Unique per delivery; receivers may deduplicate on it.")
    event = serializers.ChoiceField(choices=OutboundEvent.values)
    created_at = serializers.DateTimeField()
    occurred_at = serializers.DateTimeField(required=False)
    data = OutboundDataSerializer()


_DESCRIPTION = (
    "POSTed to each subscription URL for the events it chose. "
    "Verify `X-DMAgent-Signature: t=<unix>,v1=<hex>`: "
    "HMAC-SHA256 with the subscription's secret over `<t>.` followed by the raw body; refuse an old `t`. "
    "Answer 2xx; anything else is retried with exponential backoff."
)


def _webhook(event: OutboundEvent) -> OpenApiWebhook:
    return OpenApiWebhook(
        name=event.value,
        decorator=extend_schema(
            summary=event.label,
            description=_DESCRIPTION,
            request=OutboundWebhookEventSerializer,
            responses={200: None},
            examples=[OpenApiExample(event.value, value=_example(event))],
        ),
    )


def _example(event: OutboundEvent) -> dict:
    return {
        "id": "6f0e3a1c-…",
        "event": event.value,
        "created_at": "2026-12-01T10:00:05+00:00",
        "occurred_at": "2026-12-01T10:00:00+00:00",
        "data": {
            "lead": {
                "id": 42,
                "subscriber_id": "123456789",
                "name": "Sofia M.",
                "channel": "instagram",
                "status": "booked",
                "dashboard_url": "/dashboard/leads/42/",
            },
            "to": "booked",
            "source": "integration",
            "reason": "Booked a call through Cal.com.",
        },
    }


# One object per event, each named in SPECTACULAR_SETTINGS["WEBHOOKS"].
lead_qualified = _webhook(OutboundEvent.QUALIFIED)
lead_booked = _webhook(OutboundEvent.BOOKED)
lead_won = _webhook(OutboundEvent.WON)
lead_handed_off = _webhook(OutboundEvent.HANDED_OFF)
lead_waiting = _webhook(OutboundEvent.WAITING)
