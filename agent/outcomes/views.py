"""Booking webhooks (Cal.com, Calendly) and the outbound webhook subscriptions page."""

from __future__ import annotations

import logging
import secrets

from django.contrib import messages
from django.contrib.auth.mixins import LoginRequiredMixin, PermissionRequiredMixin
from django.core.exceptions import ValidationError
from django.core.validators import URLValidator
from django.db.models import Count, Q
from django.http import HttpRequest, JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.decorators import method_decorator
from django.views import View
from django.views.decorators.csrf import csrf_exempt

from agent.outcomes import bookings, outbound
from agent.outcomes.models import OutboundEvent, WebhookDelivery, WebhookSubscription
from leads import roles

logger = logging.getLogger(__name__)
MAX_BOOKING_BODY = 256 * 1024


def _refused(exc: bookings.BookingRefused) -> JsonResponse:
    return JsonResponse({"error": exc.message, "field": exc.field}, status=exc.status)


@method_decorator(csrf_exempt, name="dispatch")
class BookingWebhookView(View):
    """POST /webhooks/calcom/ and /webhooks/calendly/: verify, parse, record once; 200 for what we ignore."""

    provider: str = ""

    def post(self, request: HttpRequest) -> JsonResponse:
        from django.conf import settings

        body = request.body
        if len(body) > MAX_BOOKING_BODY:
            return JsonResponse({"error": f"body larger than {MAX_BOOKING_BODY} bytes"}, status=413)
        try:
            if self.provider == "calcom":
                bookings.calcom_verify(
                    body=body,
                    signature=request.headers.get("X-Cal-Signature-256", ""),
                    secret=settings.CALCOM_WEBHOOK_SECRET,
                )
                notice = bookings.calcom_notice(body=body)
            else:
                bookings.calendly_verify(
                    body=body,
                    header=request.headers.get("Calendly-Webhook-Signature", ""),
                    secret=settings.CALENDLY_WEBHOOK_SIGNING_KEY,
                )
                notice = bookings.calendly_notice(body=body)
        except bookings.BookingRefused as exc:
            return _refused(exc)
        if notice is None:
            return JsonResponse({"status": "ignored"})
        event = bookings.booking_record(notice=notice)
        logger.info("booking webhook %s: event %s applied=%s", self.provider, event.pk, event.applied)
        return JsonResponse(
            {
                "status": "recorded",
                "event_id": event.pk,
                "lead_id": event.lead_id,
                "matched_by": event.matched_by,
            }
        )


class WebhookSubscriptionsView(LoginRequiredMixin, PermissionRequiredMixin, View):
    permission_required = roles.PERM_MANAGE_WEBHOOKS

    def get(self, request):
        subscriptions = WebhookSubscription.objects.annotate(
            delivered=Count("deliveries", filter=Q(deliveries__state="delivered")),
            failed=Count("deliveries", filter=Q(deliveries__state="failed")),
            pending=Count("deliveries", filter=Q(deliveries__state="pending")),
        ).order_by("name", "id")
        recent = (
            WebhookDelivery.objects.select_related("subscription")
            .prefetch_related("log")
            .order_by("-created_at", "-id")[:30]
        )
        events = [(e.value, e.label) for e in OutboundEvent if e is not OutboundEvent.TEST]
        return render(
            request,
            "outcomes/webhooks.html",
            {"subscriptions": list(subscriptions), "recent": list(recent), "events": events},
        )

    def post(self, request):
        action = request.POST.get("action")
        if action == "create":
            url = request.POST.get("url", "").strip()
            try:
                URLValidator(schemes=["http", "https"])(url)
            except ValidationError:
                messages.error(request, "url: enter an http:// or https:// address.")
                return redirect("dashboard:webhooks")
            chosen = [e for e in request.POST.getlist("events") if e in OutboundEvent.values]
            if not chosen:
                messages.error(request, "events: choose at least one event.")
                return redirect("dashboard:webhooks")
            subscription = WebhookSubscription.objects.create(
                name=request.POST.get("name", "").strip()[:100] or url[:100],
                url=url,
                events=chosen,
                secret=secrets.token_hex(24),
                created_by=request.user,
            )
            messages.success(
                request,
                f"Added “{subscription.name}”. Its signing secret: {subscription.secret} (shown below too).",
            )
        elif action in ("test", "enable", "disable", "delete"):
            subscription = get_object_or_404(WebhookSubscription, pk=request.POST.get("subscription_id"))
            if action == "test":
                outbound.webhook_send_test(subscription=subscription)
                messages.success(request, f"Test event queued for “{subscription.name}”.")
            elif action == "enable":
                WebhookSubscription.objects.filter(pk=subscription.pk).update(
                    is_active=True, disabled_reason="", failing_since=None
                )
                messages.success(request, f"“{subscription.name}” is enabled again.")
            elif action == "disable":
                WebhookSubscription.objects.filter(pk=subscription.pk).update(
                    is_active=False, disabled_reason="by hand"
                )
                messages.success(request, f"“{subscription.name}” is disabled.")
            else:
                subscription.delete()
                messages.success(request, f"Removed “{subscription.name}”.")
        else:
            messages.error(request, "That action could not be understood.")
        return redirect("dashboard:webhooks")
