import logging
import time

from django.conf import settings
from django.db import InterfaceError, OperationalError, connection
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.parsers import BaseParser
from rest_framework.renderers import JSONRenderer
from rest_framework.response import Response
from rest_framework.views import APIView

from agent import manychat, turn
from agent.authentication import WebhookSecretAuthentication
from agent.llm import LlmErrorKind
from agent.payloads import PayloadError, payload_parse
from config import logs, metrics
from config.arrival import request_arrival
from config.confirm import response_confirm
from config.ratelimit import rate_limit_count, rate_parse
from leads.models import Channel

logger = logging.getLogger(__name__)


class _RawParser(BaseParser):
    """Accept any content type: ManyChat's builder does not always send application/json."""

    media_type = "*/*"

    def parse(self, stream, media_type=None, parser_context=None):
        return {}


class ManyChatWebhookApi(APIView):
    """POST /webhooks/manychat/: a lead's message from ManyChat; answers with a Dynamic Block v2 body.

    401 wrong or missing secret (nothing written), 413 body too large, 400 bad JSON or no subscriber id
    or text, 503 database unreachable (nothing acknowledged that was not stored). Once the message is
    stored the answer is always 200 with a valid v2 body, whatever happens after; past
    AGENT_WEBHOOK_RATE_LIMIT for the subscriber the message is stored but gets no model call (D12).

    ManyChat's body has no fixed shape, so agent.payloads normalises it (the InputSerializer below only
    documents the flat shape; the Full Contact Data object, top level or nested, is accepted too) and
    agent.manychat builds the v2 body the OutputSerializer describes.
    """

    authentication_classes = [WebhookSecretAuthentication]
    permission_classes: list = []
    parser_classes = [_RawParser]
    renderer_classes = [JSONRenderer]

    class InputSerializer(serializers.Serializer):
        class Meta:
            ref_name = "ManyChatWebhookInput"

        subscriber_id = serializers.RegexField(
            r"^[0-9]{1,32}$", help_text="{{contact.id}}: a ManyChat contact id, digits (a number is fine)"
        )
        text = serializers.CharField(help_text="{{last_input_text}}")
        channel = serializers.ChoiceField(choices=Channel.choices, required=False)
        first_name = serializers.CharField(required=False, allow_null=True)
        last_name = serializers.CharField(required=False, allow_null=True)
        username = serializers.CharField(required=False, allow_null=True)
        phone = serializers.CharField(required=False, allow_null=True)
        email = serializers.CharField(required=False, allow_null=True)
        message_id = serializers.CharField(required=False, allow_null=True, help_text="Deduplicates retries")

    class OutputSerializer(serializers.Serializer):
        class Meta:
            ref_name = "ManyChatDynamicBlockV2"

        version = serializers.CharField(default="v2")
        content = serializers.DictField(help_text="type, messages (at most 10), actions (at most 5)")

    @extend_schema(
        operation_id="webhooks_manychat",
        summary="ManyChat External Request: a lead's message in, a Dynamic Block v2 reply out",
        auth=[],
        request=InputSerializer,
        responses={
            200: OutputSerializer,
            400: OpenApiTypes.OBJECT,
            401: OpenApiTypes.OBJECT,
            413: OpenApiTypes.OBJECT,
            503: OpenApiTypes.OBJECT,
        },
    )
    def post(self, request):
        # The reply deadline counts from the request's arrival, not from here (config/arrival.py).
        arrival = request_arrival(meta=request.META)
        started = arrival.monotonic(wall_now=time.time(), monotonic_now=time.monotonic())
        limit = settings.AGENT_WEBHOOK_MAX_BODY_BYTES
        try:
            declared = int(request.META.get("CONTENT_LENGTH") or 0)
        except ValueError:
            declared = 0
        if declared > limit:
            return Response(
                {"error": f"body larger than {limit} bytes"}, status=status.HTTP_413_REQUEST_ENTITY_TOO_LARGE
            )
        raw = request.body
        if len(raw) > limit:
            return Response(
                {"error": f"body larger than {limit} bytes"}, status=status.HTTP_413_REQUEST_ENTITY_TOO_LARGE
            )
        try:
            inbound = payload_parse(raw=raw)
        except PayloadError as exc:
            return Response({"error": exc.message, "field": exc.field}, status=status.HTTP_400_BAD_REQUEST)

        try:
            stored = _inbound_store_or_retry(inbound=inbound)
        except (OperationalError, InterfaceError) as exc:
            # Not stored: if ManyChat does not send it again it is lost, so say whose it was (README).
            logger.error(
                "webhook: database unreachable, message from subscriber %s not stored: %s",
                inbound.subscriber_id,
                exc,
            )
            return Response(
                {"error": "database unavailable, retry later"},
                status=status.HTTP_503_SERVICE_UNAVAILABLE,
                headers={"Retry-After": "5"},
            )

        logs.bind(subscriber_id=inbound.subscriber_id, message_id=stored.message.pk)
        logger.info("webhook: message stored (new=%s)", stored.created)
        if stored.created and _over_rate_limit(subscriber_id=inbound.subscriber_id):
            # Limited after storing (red team D12): ManyChat does not document that it resends a refused
            # request, so a 429 would lose the message. It stays in the conversation for the next turn.
            turn.turn_skip_flood(stored=stored)
            return Response(manychat.dynamic_block_empty())
        try:
            outcome = turn.turn_run_in_webhook(stored=stored, started=started)
            body = outcome.body
            metrics.record_turn(outcome=outcome.state, mode="webhook", seconds=time.monotonic() - started)
        except Exception as exc:
            # Stored but unanswered (e.g. a reply the database refused): a counted attempt and a flag for a
            # person (so the sweep's retries are bounded), the fallback line once, and the sweep retries.
            logger.exception("webhook: turn failed after message %s was stored", stored.message.pk)
            return Response(_turn_failed_body(stored=stored, error=exc))
        response = Response(body)
        if outcome.confirm and outcome.reply is not None:
            # The reply counts as returned only once the server wrote it (ManyChat may have given up on this
            # request); otherwise it stays pending and the sweep sends it through sendContent.
            reply_id = outcome.reply.pk
            response = response_confirm(
                request=request,
                response=response,
                on_written=lambda: turn.reply_confirm_returned(message_id=reply_id),
                on_lost=lambda: _reply_lost(reply_id),
            )
        return response


def _reply_lost(reply_id: int) -> None:
    logger.warning(
        "webhook: reply %s not written (the client had gone): left to a retry or the sweep", reply_id
    )
    turn.reply_release(message_id=reply_id)


def _over_rate_limit(*, subscriber_id: str) -> bool:
    rate = rate_parse(value=settings.AGENT_WEBHOOK_RATE_LIMIT)
    if rate is None:
        return False
    allowed, _ = rate_limit_count(scope="webhook", ident=subscriber_id, rate=rate)
    return not allowed


def _inbound_store_or_retry(*, inbound):
    """Store the message; after a database error, once more on a fresh connection (a stale pooled or
    persistent connection after a PostgreSQL restart is not an outage: red team D3)."""
    try:
        return turn.inbound_store(inbound=inbound)
    except (OperationalError, InterfaceError) as exc:
        if connection.in_atomic_block:  # not ours to close (a caller's transaction)
            raise
        logger.warning("webhook: database error, retrying on a fresh connection: %s", exc)
        connection.close()
        return turn.inbound_store(inbound=inbound)


def _turn_failed_body(*, stored, error: Exception) -> dict:
    try:
        fallback = turn.turn_fail(
            stored=stored,
            failure=turn.TurnFailure(kind=LlmErrorKind.ERROR, error=f"{type(error).__name__}: {error}"),
        )
    except Exception:
        logger.exception("webhook: could not record the failed turn of message %s", stored.message.pk)
        fallback = settings.AGENT_FALLBACK_TEXT
    return turn.turn_deliver_fallback(
        stored=stored, text=fallback, channel=turn.DeliveryChannel.DYNAMIC_BLOCK
    ).body
