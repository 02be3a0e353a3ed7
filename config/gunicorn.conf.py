"""Gunicorn for the web process:  gunicorn -c config/gunicorn.conf.py config.wsgi

A webhook request spends almost all of its time waiting on the model (up to AGENT_REPLY_DEADLINE_SECONDS),
so requests are I/O-bound: threaded workers hold many slow model calls at once on few cores, without
gevent's monkey-patching (psycopg, httpx and the openai SDK stay plain blocking code).

The worker class is config.gworker.BufferingThreadWorker, gunicorn's gthread with one change: a request's
headers and body are read by the worker's event loop, without a thread, and only a request that arrived
whole within GUNICORN_REQUEST_READ_TIMEOUT seconds gets a thread. Clients that trickle headers or bodies
(slowloris) therefore cost a socket each, never one of the threads real webhooks need. A buffering proxy
in front (nginx with `proxy_request_buffering on`) does the same at the edge; this keeps the guarantee
when it is missing or misconfigured.

GUNICORN_THREADS=256 with DATABASE_POOL_MAX_SIZE=24 is the layout measured for many concurrent
conversations (README, "Load"): a webhook turn gives its connection back to the pool while the model writes
(agent.turn._connection_release), so a thread needs one only for milliseconds. The deployment files keep 32
threads, which measured better on the 2-core machine up to 256 conversations.

Connection budget: every thread may hold one PostgreSQL connection (each process has a psycopg pool of at
most DATABASE_POOL_MAX_SIZE), Celery's prefork children and beat hold one each. The sum, plus the
connections kept for administration, must stay under the server's max_connections:

    workers x min(threads, DATABASE_POOL_MAX_SIZE) + CELERY_CONCURRENCY + 1 (beat)
        + DATABASE_RESERVED_CONNECTIONS <= DATABASE_MAX_CONNECTIONS

With nothing set, `workers` is the largest count that fits (at most one per core); a configuration that
does not fit refuses to start. Larger deployments put PgBouncer (transaction mode, DATABASE_POOL=0) in
front and raise DATABASE_MAX_CONNECTIONS to PgBouncer's max_client_conn.
"""

import multiprocessing
import os
import tempfile


def _int(name: str, default: int) -> int:
    raw = os.environ.get(name, "").strip()
    return int(raw) if raw else default


def connection_budget(*, workers: int, threads: int, env: dict[str, str] | None = None) -> dict[str, int]:
    """How many PostgreSQL connections this deployment may open, and how many the server allows."""
    env = os.environ if env is None else env

    def read(name: str, default: int) -> int:
        raw = str(env.get(name, "")).strip()
        return int(raw) if raw else default

    pool_max = read("DATABASE_POOL_MAX_SIZE", threads)
    per_worker = min(threads, pool_max) if read("DATABASE_POOL", 1) else threads
    celery = read("CELERY_CONCURRENCY", 4) + 1  # prefork children + beat
    reserved = read("DATABASE_RESERVED_CONNECTIONS", 8)  # superuser_reserved_connections, migrate, psql
    return {
        "web": workers * per_worker,
        "per_worker": per_worker,
        "celery": celery,
        "reserved": reserved,
        "total": workers * per_worker + celery + reserved,
        "max_connections": read("DATABASE_MAX_CONNECTIONS", 100),
    }


def workers_default(*, threads: int, cpus: int, env: dict[str, str] | None = None) -> int:
    """One worker per core, fewer when that would not fit the connection budget (never fewer than 1)."""
    budget = connection_budget(workers=0, threads=threads, env=env)
    room = budget["max_connections"] - budget["celery"] - budget["reserved"]
    return max(1, min(cpus, room // max(1, budget["per_worker"])))


def budget_check(*, workers: int, threads: int, env: dict[str, str] | None = None) -> None:
    budget = connection_budget(workers=workers, threads=threads, env=env)
    if budget["total"] > budget["max_connections"]:
        raise SystemExit(
            f"gunicorn.conf: {workers} workers x {budget['per_worker']} connections + {budget['celery']} "
            f"(Celery + beat) + {budget['reserved']} reserved = {budget['total']} PostgreSQL connections, "
            f"over DATABASE_MAX_CONNECTIONS={budget['max_connections']}. Lower GUNICORN_WORKERS, "
            "GUNICORN_THREADS or DATABASE_POOL_MAX_SIZE, or put PgBouncer in front (README, Reliability)."
        )


bind = os.environ.get("GUNICORN_BIND", f"0.0.0.0:{os.environ.get('PORT', '8000')}")
threads = _int("GUNICORN_THREADS", 32)
workers = _int("GUNICORN_WORKERS", 0) or workers_default(threads=threads, cpus=multiprocessing.cpu_count())
budget_check(workers=workers, threads=threads)
worker_class = os.environ.get("GUNICORN_WORKER_CLASS", "config.gworker.BufferingThreadWorker")
# Open sockets per worker: threads busy + requests still arriving (slow clients wait here, not in threads).
worker_connections = _int("GUNICORN_WORKER_CONNECTIONS", 1000)
# Above the reply deadline (8 s) plus storing, so a slow turn is never killed mid-answer.
timeout = _int("GUNICORN_TIMEOUT", 30)
graceful_timeout = 30
keepalive = 5
backlog = 2048
max_requests = _int("GUNICORN_MAX_REQUESTS", 5000)
max_requests_jitter = 500
accesslog = os.environ.get("GUNICORN_ACCESS_LOG") or None
errorlog = "-"
loglevel = os.environ.get("GUNICORN_LOG_LEVEL", "info")
forwarded_allow_ips = os.environ.get("FORWARDED_ALLOW_IPS", "127.0.0.1")
# Request line + headers + body must arrive within this many seconds (config.gworker); 413 past the size.
limit_request_line = 8190
limit_request_field_size = 8190


def post_worker_init(worker):
    """Import every view (and the openai SDK) before the first request, not inside a lead's 10 s window."""
    from django.urls import get_resolver

    get_resolver().url_patterns  # noqa: B018


# Prometheus multiprocess mode (config/metrics.py): every worker writes its samples under this directory and
# /metrics merges them. Emptied when the arbiter starts, so counters restart with the service, as Prometheus
# expects; a dead worker's live gauges are dropped.
# Each gunicorn gets its own directory by default (the arbiter's pid), so two on one machine never share.
os.environ.setdefault(
    "PROMETHEUS_MULTIPROC_DIR", os.path.join(tempfile.gettempdir(), f"dmagent-prometheus-web-{os.getpid()}")
)
# Made now, not in on_starting: loading the worker class imports the config package before the hooks run.
os.makedirs(os.environ["PROMETHEUS_MULTIPROC_DIR"], exist_ok=True)


def on_starting(server):
    """A fresh start drops the samples of an earlier run's processes (a HUP reload keeps them)."""
    directory = os.environ["PROMETHEUS_MULTIPROC_DIR"]
    for name in os.listdir(directory):
        if name.endswith(".db"):
            os.remove(os.path.join(directory, name))


def child_exit(server, worker):
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid)


def on_exit(server):
    import shutil

    shutil.rmtree(os.environ["PROMETHEUS_MULTIPROC_DIR"], ignore_errors=True)
