"""Liveness and readiness for load balancers and uptime checks.

`/healthz` answers from the process alone (no I/O): a 200 means the worker can serve a request.
`/readyz` checks what a request needs: the database, the cache, the Celery broker and that every migration is
applied, each with its latency; it answers 503 naming what is down. The Celery heartbeat (written by a worker
running the beat-scheduled `ops.heartbeat` task) is reported too, so a dead worker or beat shows; it makes the
answer 503 only when `READYZ_REQUIRE_WORKER` is on, because a web process should not leave the load balancer's
pool when only the worker is down (webhooks are still stored and answered in the request).

Nothing sensitive is revealed: no host names, versions, URLs or error messages, only a check's name, its state
and its latency.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum

from django.conf import settings
from django.core.cache import cache
from django.db import DEFAULT_DB_ALIAS, connections
from django.db.migrations.executor import MigrationExecutor
from django.http import HttpRequest, JsonResponse
from django.utils import timezone
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

HEARTBEAT_CACHE_KEY = "ops:celery-heartbeat"


class CheckState(StrEnum):
    OK = "ok"
    DOWN = "down"
    STALE = "stale"
    SKIPPED = "skipped"


@dataclass(frozen=True)
class CheckResult:
    name: str
    state: CheckState
    latency_ms: float
    detail: str = ""

    def as_dict(self) -> dict[str, object]:
        body: dict[str, object] = {"state": self.state.value, "latency_ms": round(self.latency_ms, 1)}
        if self.detail:
            body["detail"] = self.detail
        return body


def _timed(name: str, probe: Callable[[], tuple[CheckState, str]]) -> CheckResult:
    started = time.perf_counter()
    try:
        state, detail = probe()
    except Exception:  # noqa: BLE001 - any failure means "down"; the reason stays in our logs, not the body
        state, detail = CheckState.DOWN, ""
    return CheckResult(
        name=name, state=state, latency_ms=(time.perf_counter() - started) * 1000, detail=detail
    )


def _database() -> tuple[CheckState, str]:
    # Django's request_started handler has already dropped a stale persistent connection (health checks on).
    with connections[DEFAULT_DB_ALIAS].cursor() as cursor:
        cursor.execute("SELECT 1")
        cursor.fetchone()
    return CheckState.OK, ""


def _migrations() -> tuple[CheckState, str]:
    connection = connections[DEFAULT_DB_ALIAS]
    executor = MigrationExecutor(connection)
    plan = executor.migration_plan(executor.loader.graph.leaf_nodes())
    if plan:
        return CheckState.DOWN, f"{len(plan)} unapplied"
    return CheckState.OK, ""


def _cache() -> tuple[CheckState, str]:
    key = "ops:readyz-probe"
    cache.set(key, "1", timeout=10)
    if cache.get(key) != "1":
        return CheckState.DOWN, ""
    return CheckState.OK, ""


def _broker() -> tuple[CheckState, str]:
    if not settings.CELERY_BROKER_URL:
        return CheckState.SKIPPED, "tasks run in process"
    from config.celery import app

    with app.connection_for_write() as conn:
        conn.ensure_connection(max_retries=1, timeout=settings.READYZ_BROKER_TIMEOUT_SECONDS)
    return CheckState.OK, ""


def heartbeat_age_seconds() -> float | None:
    beat = cache.get(HEARTBEAT_CACHE_KEY)
    if beat is None:
        return None
    return max(0.0, timezone.now().timestamp() - float(beat))


def heartbeat_record() -> None:
    """Called by the beat-scheduled task in a worker: proves both beat and a worker are alive."""
    cache.set(HEARTBEAT_CACHE_KEY, timezone.now().timestamp(), timeout=24 * 3600)


def _celery() -> tuple[CheckState, str]:
    if not settings.CELERY_BROKER_URL:
        return CheckState.SKIPPED, "tasks run in process"
    age = heartbeat_age_seconds()
    if age is None:
        return CheckState.STALE, "no heartbeat yet"
    if age > settings.OPS_HEARTBEAT_MAX_AGE_SECONDS:
        return CheckState.STALE, f"last heartbeat {int(age)} s ago"
    return CheckState.OK, f"last heartbeat {int(age)} s ago"


REQUIRED = ("database", "migrations", "cache", "broker")


def readiness() -> tuple[bool, dict[str, CheckResult]]:
    results = {
        "database": _timed("database", _database),
        "cache": _timed("cache", _cache),
        "broker": _timed("broker", _broker),
        "celery": _timed("celery", _celery),
    }
    # Without a database the migration state cannot be read: report it as down too, without a second wait.
    if results["database"].state is CheckState.DOWN:
        results["migrations"] = CheckResult("migrations", CheckState.DOWN, 0.0, "database down")
    else:
        results["migrations"] = _timed("migrations", _migrations)
    required = REQUIRED + (("celery",) if settings.READYZ_REQUIRE_WORKER else ())
    ready = all(results[name].state in (CheckState.OK, CheckState.SKIPPED) for name in required)
    return ready, results


@never_cache
@require_GET
def healthz(request: HttpRequest) -> JsonResponse:
    return JsonResponse({"status": "ok"})


@never_cache
@require_GET
def readyz(request: HttpRequest) -> JsonResponse:
    ready, results = readiness()
    down = [name for name, result in results.items() if result.state in (CheckState.DOWN, CheckState.STALE)]
    body = {
        "status": "ready" if ready else "unavailable",
        "down": down,
        "checks": {name: result.as_dict() for name, result in results.items()},
    }
    return JsonResponse(body, status=200 if ready else 503)


class ProbeMiddleware:
    """Answers /healthz and /readyz before host validation and the HTTPS redirect.

    A load balancer or a container runtime probes by IP over plain HTTP (`Host: 10.0.0.7:8000`), which
    ALLOWED_HOSTS and SECURE_SSL_REDIRECT would refuse. The probes reveal nothing and take no input, so
    they are safe to answer for any host. First in MIDDLEWARE.
    """

    def __init__(self, get_response):  # type: ignore[no-untyped-def]
        self.get_response = get_response

    def __call__(self, request: HttpRequest):  # type: ignore[no-untyped-def]
        if request.path == "/healthz":
            return healthz(request)
        if request.path == "/readyz":
            return readyz(request)
        return self.get_response(request)
