"""Prometheus metrics at `/metrics`, from prometheus-client (the Prometheus project's own Python client).

Several gunicorn workers and Celery processes each count their own events; with `PROMETHEUS_MULTIPROC_DIR`
set (config/gunicorn.conf.py and the worker's unit set it) every process writes its samples to that directory
and the scrape merges them (prometheus-client's multiprocess mode). Without it (runserver, tests) the process'
own registry is served.

Two kinds of figures:
- events counted where they happen (webhook requests by outcome, turn and model latency, model errors by kind,
  deliveries by status, tokens and cost by model and version, handoffs);
- state read from the database at scrape time, cheaply and from indexes (the retry sweep's backlog, leads
  waiting for a person) and the broker's queue depth.

`/metrics` needs `Authorization: Bearer $METRICS_TOKEN`; with no token set it is open only while DEBUG is on.
"""

from __future__ import annotations

import hmac
import logging
import os
from collections.abc import Iterator
from decimal import Decimal

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
)
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

logger = logging.getLogger(__name__)

_LATENCY_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1, 2, 3, 5, 8, 10, 15, 30, 60)

WEBHOOK_REQUESTS = Counter(
    "dmagent_webhook_requests_total",
    "ManyChat webhook requests by outcome (the HTTP status class the webhook answered with).",
    ["outcome"],
)
WEBHOOK_DURATION = Histogram(
    "dmagent_webhook_duration_seconds",
    "Time from the webhook request entering Django to its answer (the turn as ManyChat waits for it).",
    buckets=_LATENCY_BUCKETS,
)
TURNS = Counter("dmagent_turns_total", "Turns finished, by how they ended.", ["outcome"])
TURN_DURATION = Histogram(
    "dmagent_turn_duration_seconds",
    "Time a turn took from the stored message to its reply, in the webhook or a worker.",
    ["mode"],
    buckets=_LATENCY_BUCKETS,
)
MODEL_DURATION = Histogram(
    "dmagent_model_call_duration_seconds",
    "Model call latency, successful or not.",
    ["model"],
    buckets=_LATENCY_BUCKETS,
)
MODEL_ERRORS = Counter("dmagent_model_errors_total", "Failed model calls by kind.", ["kind"])
DELIVERIES = Counter(
    "dmagent_deliveries_total", "Replies handed to ManyChat, by delivery status.", ["status"]
)
TOKENS = Counter(
    "dmagent_tokens_total", "Model tokens used by the agent.", ["model", "prompt_version", "kind"]
)
COST = Counter(
    "dmagent_cost_usd_total",
    "Model cost in US dollars from the configured price table.",
    ["model", "prompt_version"],
)
HANDOFFS = Counter("dmagent_handoffs_total", "Leads handed to a person, by reason kind.", ["reason"])


def _label(value: object) -> str:
    text = str(value or "none")
    return text[:64]


def record_webhook(*, status_code: int, seconds: float) -> None:
    outcome = {2: "answered", 4: "refused", 5: "unavailable"}.get(status_code // 100, "other")
    if status_code == 429:
        outcome = "rate_limited"
    WEBHOOK_REQUESTS.labels(outcome=outcome).inc()
    WEBHOOK_DURATION.observe(seconds)


def record_turn(*, outcome: str, mode: str, seconds: float | None) -> None:
    TURNS.labels(outcome=_label(outcome)).inc()
    if seconds is not None:
        TURN_DURATION.labels(mode=_label(mode)).observe(seconds)


def record_model_call(*, model: str, seconds: float, error_kind: str | None = None) -> None:
    MODEL_DURATION.labels(model=_label(model)).observe(seconds)
    if error_kind:
        MODEL_ERRORS.labels(kind=_label(error_kind)).inc()


def record_delivery(*, status: str) -> None:
    DELIVERIES.labels(status=_label(status)).inc()


def price_usd(*, model: str, prompt_tokens: int, completion_tokens: int) -> Decimal | None:
    """Cost from `AGENT_MODEL_PRICES` (USD per million tokens, "model=input/output,..."); None if unpriced."""
    prices = settings.AGENT_MODEL_PRICES.get(model)
    if prices is None:
        return None
    per_input, per_output = prices
    return (Decimal(prompt_tokens) * per_input + Decimal(completion_tokens) * per_output) / Decimal(1_000_000)


def record_tokens(*, model: str, prompt_version: object, prompt_tokens: int, completion_tokens: int) -> None:
    model_label, version_label = _label(model), _label(prompt_version)
    TOKENS.labels(model=model_label, prompt_version=version_label, kind="prompt").inc(prompt_tokens)
    TOKENS.labels(model=model_label, prompt_version=version_label, kind="completion").inc(completion_tokens)
    cost = price_usd(model=model, prompt_tokens=prompt_tokens, completion_tokens=completion_tokens)
    if cost is not None:
        COST.labels(model=model_label, prompt_version=version_label).inc(float(cost))


def record_handoff(*, reason: str) -> None:
    HANDOFFS.labels(reason=_label(reason)).inc()


class DatabaseStateCollector(Collector):
    """State that lives in the database, read at scrape time from indexed columns."""

    def collect(self) -> Iterator[GaugeMetricFamily]:
        from leads.models import DeliveryStatus, Lead, Message, MessageRole

        try:
            backlog = Message.objects.filter(
                role=MessageRole.LEAD,
                delivery_status__in=[DeliveryStatus.RECEIVED, DeliveryStatus.FAILED],
            ).count()
            waiting = Lead.objects.filter(needs_human=True).count()
        except Exception:  # noqa: BLE001 - a scrape must answer even when the database does not
            logger.warning("metrics: database state unavailable", exc_info=True)
            return
        yield GaugeMetricFamily(
            "dmagent_sweep_backlog",
            "Lead messages whose turn has not completed (what the sweep retries).",
            backlog,
        )
        yield GaugeMetricFamily("dmagent_leads_waiting_for_person", "Leads handed to a person.", waiting)
        depth = _queue_depth()
        if depth is not None:
            yield GaugeMetricFamily(
                "dmagent_celery_queue_depth", "Tasks waiting in the default Celery queue.", depth
            )


def _queue_depth() -> int | None:
    broker = settings.CELERY_BROKER_URL
    if not broker.startswith(("redis://", "rediss://")):
        return None
    try:
        import redis

        client = redis.Redis.from_url(broker, socket_timeout=0.5, socket_connect_timeout=0.5)
        return int(client.llen("celery"))
    except Exception:  # noqa: BLE001
        return None


_DB_STATE = DatabaseStateCollector()
_DB_STATE_REGISTERED = False


def _registry() -> CollectorRegistry:
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess

        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
        registry.register(_DB_STATE)
        return registry
    global _DB_STATE_REGISTERED
    if not _DB_STATE_REGISTERED:
        REGISTRY.register(_DB_STATE)
        _DB_STATE_REGISTERED = True
    return REGISTRY


def _authorised(request: HttpRequest) -> bool:
    token = settings.METRICS_TOKEN
    if not token:
        return bool(settings.DEBUG)
    header = request.headers.get("Authorization", "")
    scheme, _, given = header.partition(" ")
    return scheme.lower() == "bearer" and hmac.compare_digest(given.strip().encode(), token.encode())


@never_cache
@require_GET
def metrics_view(request: HttpRequest) -> HttpResponse:
    if not _authorised(request):
        return HttpResponse(
            "Metrics need 'Authorization: Bearer <METRICS_TOKEN>'.\n", status=401, content_type="text/plain"
        )
    return HttpResponse(generate_latest(_registry()), content_type=CONTENT_TYPE_LATEST)


class WebhookMetricsMiddleware:
    """Counts every webhook answer, including the 4xx/5xx ones the view never reaches."""

    def __init__(self, get_response):  # type: ignore[no-untyped-def]
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if not request.path.startswith("/webhooks/"):
            return self.get_response(request)
        import time

        started = time.perf_counter()
        response = self.get_response(request)
        record_webhook(status_code=response.status_code, seconds=time.perf_counter() - started)
        return response


def serve_worker_metrics() -> None:
    """In a Celery worker's main process: serve its children's samples on CELERY_METRICS_PORT.

    The web's /metrics cannot see a worker's samples (another host or another directory), so each worker
    exposes its own endpoint for Prometheus to scrape, from its own PROMETHEUS_MULTIPROC_DIR.
    """
    port = int(os.environ.get("CELERY_METRICS_PORT", "0") or 0)
    directory = os.environ.get("PROMETHEUS_MULTIPROC_DIR", "")
    if not port or not directory:
        return
    import shutil

    from prometheus_client import multiprocess, start_http_server

    shutil.rmtree(directory, ignore_errors=True)
    os.makedirs(directory, exist_ok=True)
    registry = CollectorRegistry()
    multiprocess.MultiProcessCollector(registry)
    start_http_server(port, addr=os.environ.get("CELERY_METRICS_ADDR", "127.0.0.1"), registry=registry)


def worker_child_exited(pid: int) -> None:
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(pid)
