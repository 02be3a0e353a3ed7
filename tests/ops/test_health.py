"""/healthz and /readyz: what a load balancer and an uptime check read."""

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from django.core.cache import cache

from config.health import HEARTBEAT_CACHE_KEY, heartbeat_record

ROOT = Path(__file__).resolve().parents[2]
REDIS_URL = os.environ.get("TEST_REDIS_URL", "")


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _readyz_in_a_process(**env: str) -> tuple[int, dict]:
    """GET /readyz in a fresh process configured by `env` (a real unreachable server, no mocks)."""
    script = (
        "import django, json, os\n"
        "os.environ.setdefault('DJANGO_SETTINGS_MODULE', 'config.settings')\n"
        "django.setup()\n"
        "from django.test import Client\n"
        "r = Client().get('/readyz')\n"
        "print(json.dumps({'status': r.status_code, 'body': json.loads(r.content)}))\n"
    )
    child_env = {**os.environ, "DJANGO_DEBUG": "1", **env}
    out = subprocess.run(
        [sys.executable, "-c", script], cwd=ROOT, env=child_env, capture_output=True, text=True, timeout=60
    )
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout.strip().splitlines()[-1])
    return result["status"], result["body"]


def test_healthz_answers_without_touching_the_database(client):
    # No django_db mark: any query here raises, so a 200 proves the probe did no database I/O.
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}
    assert response["Cache-Control"].startswith("max-age=0")


@pytest.mark.django_db
def test_readyz_reports_each_check_with_its_latency(client, settings):
    settings.CELERY_BROKER_URL = ""
    response = client.get("/readyz")
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "ready" and body["down"] == []
    assert set(body["checks"]) == {"database", "migrations", "cache", "broker", "celery"}
    assert body["checks"]["database"]["state"] == "ok"
    assert body["checks"]["migrations"]["state"] == "ok"
    assert body["checks"]["broker"]["state"] == "skipped"
    assert all(check["latency_ms"] >= 0 for check in body["checks"].values())


def test_readyz_names_the_database_when_postgresql_is_unreachable():
    port = _closed_port()
    status, body = _readyz_in_a_process(
        DATABASE_URL=f"postgres://postgres@127.0.0.1:{port}/nothing_here",
        DATABASE_POOL_TIMEOUT="1",
        DATABASE_CONNECT_TIMEOUT="1",
        CELERY_BROKER_URL="",
    )
    assert status == 503
    assert "database" in body["down"]
    assert body["checks"]["database"]["state"] == "down"
    assert body["checks"]["cache"]["state"] == "ok"
    # Nothing sensitive: no host, port or driver message in the answer.
    assert str(port) not in json.dumps(body) and "127.0.0.1" not in json.dumps(body)


def test_readyz_names_the_broker_when_redis_is_down(tmp_path):
    port = _closed_port()
    status, body = _readyz_in_a_process(
        DATABASE_URL=f"sqlite:///{tmp_path / 'ready.sqlite3'}",
        CELERY_BROKER_URL=f"redis://127.0.0.1:{port}/0",
    )
    # The fresh SQLite file has no tables: migrations are reported too; the broker is named either way.
    assert status == 503
    assert "broker" in body["down"]
    assert body["checks"]["broker"]["state"] == "down"
    assert body["checks"]["database"]["state"] == "ok"


@pytest.mark.skipif(not REDIS_URL, reason="TEST_REDIS_URL is not set: no Redis for the broker check")
@pytest.mark.django_db
def test_readyz_with_a_live_broker_and_the_celery_heartbeat(client, settings):
    settings.CELERY_BROKER_URL = REDIS_URL
    from config.celery import app

    previous = app.conf.broker_url
    app.conf.broker_url = REDIS_URL
    try:
        cache.delete(HEARTBEAT_CACHE_KEY)
        body = client.get("/readyz").json()
        assert body["checks"]["broker"]["state"] == "ok"
        # No heartbeat yet: the worker shows as stale, but readiness holds unless it is required.
        assert body["checks"]["celery"]["state"] == "stale"
        assert body["status"] == "ready"
        settings.READYZ_REQUIRE_WORKER = True
        assert client.get("/readyz").status_code == 503
        heartbeat_record()
        body = client.get("/readyz").json()
        assert body["checks"]["celery"]["state"] == "ok"
        assert body["status"] == "ready"
    finally:
        app.conf.broker_url = previous


@pytest.mark.django_db
def test_probes_answer_any_host_over_plain_http(client, settings):
    settings.DEBUG = False
    settings.ALLOWED_HOSTS = ["agent.example.com"]
    settings.SECURE_SSL_REDIRECT = True
    settings.CELERY_BROKER_URL = ""
    assert client.get("/healthz", HTTP_HOST="10.0.0.7:8000").status_code == 200
    assert client.get("/readyz", HTTP_HOST="10.0.0.7:8000").status_code == 200
    # Everything else still refuses the unknown host.
    assert client.get("/dashboard/", HTTP_HOST="10.0.0.7:8000").status_code == 400
