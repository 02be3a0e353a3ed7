"""Fixed-window rate limits in the Django cache (LocMem locally, Redis through REDIS_URL in production).

A rate is written "<count>/<seconds>" (AGENT_WEBHOOK_RATE_LIMIT, LOGIN_RATE_LIMIT); an empty value turns
the limit off. The limiter fails open: when the cache is unreachable a request is let through, because
refusing a lead's message (or every login) is worse than an unmetered minute.
"""

import hashlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import wraps

from django.conf import settings
from django.contrib.auth.views import LoginView, PasswordResetView
from django.core.cache import cache
from django.http import HttpRequest, HttpResponse

from config.client_ip import client_ip

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


def _too_many(retry_after: int, what: str) -> HttpResponse:
    response = HttpResponse(
        f"Too many {what}. Try again in a few minutes.", status=429, content_type="text/plain; charset=utf-8"
    )
    response["Retry-After"] = str(retry_after)
    return response


def _login_limits(request: HttpRequest) -> list[tuple[str, Rate]]:
    """(ident, rate) pairs a login POST is counted against: the account, and the real client address.

    Two separate limits: LOGIN_RATE_LIMIT failures lock one account (whatever the address, so a botnet
    cannot brute-force it), LOGIN_IP_RATE_LIMIT (higher) failures across accounts lock one address. Ten
    wrong passwords for one user therefore never lock out a colleague behind the same address, and the
    address is the client's own (config.client_ip, behind TRUSTED_PROXIES), not the proxy's.
    """
    limits = []
    account_rate = rate_parse(value=settings.LOGIN_RATE_LIMIT)
    ip_rate = rate_parse(value=getattr(settings, "LOGIN_IP_RATE_LIMIT", ""))
    username = str(request.POST.get("username", "")).strip().lower()[:150]
    if account_rate is not None and username:
        limits.append((f"user:{username}", account_rate))
    if ip_rate is not None:
        limits.append((f"ip:{client_ip(request)}", ip_rate))
    return limits


def login_rate_limited(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    """A login view (the dashboard's or the admin's) that refuses with 429 past the failed-login limits.

    Only failed attempts count (the form coming back with 200), so typing the right password never uses
    up a limit; once a limit is used up even the right password is refused until the window ends.
    """

    @wraps(view)
    def limited(request: HttpRequest, *args, **kwargs) -> HttpResponse:
        if request.method != "POST":
            return view(request, *args, **kwargs)
        limits = _login_limits(request)
        for ident, rate in limits:
            allowed, retry_after = rate_limit_peek(scope="login", ident=ident, rate=rate)
            if not allowed:
                return _too_many(retry_after, "failed login attempts")
        response = view(request, *args, **kwargs)
        if response.status_code == 200:  # the form came back: a failed attempt
            for ident, rate in limits:
                rate_limit_count(scope="login", ident=ident, rate=rate)
        return response

    return limited


class RateLimitedLoginView(LoginView):
    """The dashboard's login page under the failed-login limits (login_rate_limited)."""

    @classmethod
    def as_view(cls, **initkwargs):
        return login_rate_limited(super().as_view(**initkwargs))


class RateLimitedPasswordResetView(PasswordResetView):
    """Password reset requests, at most PASSWORD_RESET_RATE_LIMIT per address and per e-mail address."""

    def post(self, request: HttpRequest, *args, **kwargs) -> HttpResponse:
        rate = rate_parse(value=getattr(settings, "PASSWORD_RESET_RATE_LIMIT", ""))
        if rate is not None:
            email = str(request.POST.get("email", "")).strip().lower()[:254]
            for ident in (f"ip:{client_ip(request)}", f"email:{email}"):
                allowed, retry_after = rate_limit_count(scope="password_reset", ident=ident, rate=rate)
                if not allowed:
                    return _too_many(retry_after, "password reset requests")
        return super().post(request, *args, **kwargs)
