"""Fixed-window rate limits in the Django cache (LocMem locally, Redis through REDIS_URL in production).

A rate is written "<count>/<seconds>" (AGENT_WEBHOOK_RATE_LIMIT, LOGIN_RATE_LIMIT); an empty value turns
the limit off. The limiter fails open: when the cache is unreachable a request is let through, because
refusing a lead's message (or every login) is worse than an unmetered minute.
"""

import hashlib
import logging
import time
from dataclasses import dataclass

from django.conf import settings
from django.contrib.auth.views import LoginView
from django.core.cache import cache
from django.http import HttpRequest, HttpResponse

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Rate:
    limit: int
    period: int


def rate_parse(*, value: str) -> Rate | None:
    """'20/60' -> Rate(20, 60); '' -> None (no limit). Anything else is a configuration error."""
    value = (value or "").strip()
    if not value:
        return None
    count, sep, seconds = value.partition("/")
    try:
        rate = Rate(limit=int(count), period=int(seconds)) if sep else None
    except ValueError:
        rate = None
    if rate is None or rate.limit < 1 or rate.period < 1:
        raise ValueError(f"a rate is '<count>/<seconds>' with both positive, not {value!r}")
    return rate


def _key(*, scope: str, ident: str, rate: Rate) -> tuple[str, int]:
    now = time.time()
    window = int(now // rate.period)
    digest = hashlib.sha256(ident.encode()).hexdigest()[:32]
    retry_after = max(1, int((window + 1) * rate.period - now))
    return f"rl:{scope}:{digest}:{window}", retry_after


def rate_limit_count(*, scope: str, ident: str, rate: Rate) -> tuple[bool, int]:
    """Count one hit; (allowed, retry_after_seconds). The hit that crosses the limit is refused."""
    key, retry_after = _key(scope=scope, ident=ident, rate=rate)
    try:
        cache.add(key, 0, timeout=rate.period + 1)
        hits = cache.incr(key)
    except Exception as exc:  # noqa: BLE001 - any cache failure fails open
        logger.warning("rate limit %s: cache unavailable, not limiting: %s", scope, exc)
        return True, 0
    return hits <= rate.limit, retry_after


def rate_limit_peek(*, scope: str, ident: str, rate: Rate) -> tuple[bool, int]:
    """Whether the limit is already used up, without counting a hit."""
    key, retry_after = _key(scope=scope, ident=ident, rate=rate)
    try:
        hits = cache.get(key, 0)
    except Exception as exc:  # noqa: BLE001 - any cache failure fails open
        logger.warning("rate limit %s: cache unavailable, not limiting: %s", scope, exc)
        return True, 0
    return hits < rate.limit, retry_after


class RateLimitedLoginView(LoginView):
    """The login page, refusing with 429 after LOGIN_RATE_LIMIT failed attempts per username and per IP.

    Only failed attempts count, so a user who types the right password is never locked out by logging in.
    """

    def _idents(self) -> list[str]:
        username = str(self.request.POST.get("username", "")).strip().lower()[:150]
        ip = self.request.META.get("REMOTE_ADDR", "")
        return [f"user:{username}", f"ip:{ip}"]

    def post(self, request: HttpRequest, *args, **kwargs) -> HttpResponse:
        rate = rate_parse(value=settings.LOGIN_RATE_LIMIT)
        if rate is None:
            return super().post(request, *args, **kwargs)
        for ident in self._idents():
            allowed, retry_after = rate_limit_peek(scope="login", ident=ident, rate=rate)
            if not allowed:
                response = HttpResponse(
                    "Too many failed login attempts. Try again in a few minutes.",
                    status=429,
                    content_type="text/plain; charset=utf-8",
                )
                response["Retry-After"] = str(retry_after)
                return response
        response = super().post(request, *args, **kwargs)
        if response.status_code == 200:  # the form came back: a failed attempt
            for ident in self._idents():
                rate_limit_count(scope="login", ident=ident, rate=rate)
        return response
