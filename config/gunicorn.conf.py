"""Gunicorn for the web process:  gunicorn -c config/gunicorn.conf.py config.wsgi

A webhook request spends almost all of its time waiting on the model (up to AGENT_REPLY_DEADLINE_SECONDS),
so requests are I/O-bound: threaded workers (gthread) hold many slow model calls at once on few cores,
without gevent's monkey-patching (psycopg, httpx and the openai SDK stay plain blocking code).
Capacity = workers x threads simultaneous requests; the default on a 2-core machine is 2 x 32 = 64,
measured by bench/bench_webhook.py to hold >= 40 simultaneous 2 s model calls without errors.
Each busy thread may hold one PostgreSQL connection: keep workers x threads (x DATABASE_CONN_MAX_AGE
reuse) under the server's max_connections.
"""

import multiprocessing
import os

bind = os.environ.get("GUNICORN_BIND", f"0.0.0.0:{os.environ.get('PORT', '8000')}")
workers = int(os.environ.get("GUNICORN_WORKERS", multiprocessing.cpu_count()))
worker_class = "gthread"
threads = int(os.environ.get("GUNICORN_THREADS", "32"))
# Above the reply deadline (8 s) plus storing, so a slow turn is never killed mid-answer.
timeout = int(os.environ.get("GUNICORN_TIMEOUT", "30"))
graceful_timeout = 30
keepalive = 5
backlog = 2048
max_requests = int(os.environ.get("GUNICORN_MAX_REQUESTS", "5000"))
max_requests_jitter = 500
accesslog = os.environ.get("GUNICORN_ACCESS_LOG") or None
errorlog = "-"
loglevel = os.environ.get("GUNICORN_LOG_LEVEL", "info")
forwarded_allow_ips = os.environ.get("FORWARDED_ALLOW_IPS", "127.0.0.1")


def post_worker_init(worker):
    """Import every view (and the openai SDK) before the first request, not inside a lead's 10 s window."""
    from django.urls import get_resolver

    get_resolver().url_patterns  # noqa: B018
