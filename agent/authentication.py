"""The webhook's caller check: ManyChat presents the shared secret in X-Webhook-Secret (or as a Bearer
token). A DRF authentication class, so the webhook view is only its pipeline."""

import hmac

from django.conf import settings
from django.contrib.auth.models import AnonymousUser
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from rest_framework.authentication import BaseAuthentication
from rest_framework.exceptions import AuthenticationFailed
from rest_framework.request import Request

WEBHOOK_REALM = 'Bearer realm="manychat-webhook"'


def _secrets() -> list[bytes]:
    configured = (settings.MANYCHAT_WEBHOOK_SECRET, settings.MANYCHAT_WEBHOOK_SECRET_PREVIOUS)
    return [secret.encode() for secret in configured if secret]


def _presented_secret(request: Request) -> bytes:
    header = request.META.get("HTTP_X_WEBHOOK_SECRET")
    if header:
        return header.strip().encode()
    scheme, _, credentials = request.META.get("HTTP_AUTHORIZATION", "").partition(" ")
    if scheme.lower() == "bearer" and credentials.strip():
        return credentials.strip().encode()
    return b""


def webhook_secret_matches(*, presented: bytes) -> bool:
    # Compare against every configured secret (current and previous) so timing says nothing about which.
    matches = [hmac.compare_digest(presented, secret) for secret in _secrets()]
    return bool(presented) and any(matches)


class WebhookSecretAuthentication(BaseAuthentication):
    """401 for a wrong or missing secret, before the body is read; with no secret configured, nothing
    gets in. The caller is ManyChat, not a user: request.user stays anonymous, request.auth is "manychat"."""

    def authenticate(self, request: Request) -> tuple[AnonymousUser, str]:
        if not webhook_secret_matches(presented=_presented_secret(request)):
            raise AuthenticationFailed("invalid or missing webhook secret")
        return AnonymousUser(), "manychat"

    def authenticate_header(self, request: Request) -> str:
        return WEBHOOK_REALM  # makes DRF answer 401, not 403


class WebhookSecretScheme(OpenApiAuthenticationExtension):
    target_class = "agent.authentication.WebhookSecretAuthentication"
    name = "webhookSecret"

    def get_security_definition(self, auto_schema):  # noqa: ANN001, ANN201 - drf-spectacular's hook
        return {"type": "apiKey", "in": "header", "name": "X-Webhook-Secret"}
