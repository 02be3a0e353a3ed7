"""D3/D7: connections are reused and health-checked, and the web + worker processes cannot open more
PostgreSQL connections than the server allows (config/gunicorn.conf.py refuses such a configuration)."""

import runpy
from pathlib import Path

import pytest

CONF = Path(__file__).resolve().parents[2] / "config" / "gunicorn.conf.py"


def _load(monkeypatch, **env) -> dict:
    for name in ("GUNICORN_WORKERS", "GUNICORN_THREADS", "DATABASE_POOL_MAX_SIZE", "CELERY_CONCURRENCY"):
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, str(value))
    return runpy.run_path(str(CONF))


def test_default_configuration_fits_max_connections_100(monkeypatch):
    conf = _load(monkeypatch)
    budget = conf["connection_budget"](workers=conf["workers"], threads=conf["threads"])
    assert budget["max_connections"] == 100
    assert budget["total"] <= 100


@pytest.mark.parametrize("cpus", [2, 8, 64])
def test_default_worker_count_shrinks_to_the_budget_on_big_machines(monkeypatch, cpus):
    conf = _load(monkeypatch)
    workers = conf["workers_default"](threads=32, cpus=cpus)
    budget = conf["connection_budget"](workers=workers, threads=32)
    assert 1 <= workers <= cpus
    assert budget["total"] <= 100


def test_over_budget_configuration_refuses_to_start(monkeypatch):
    # The red team's storm (D7): 8 workers x 32 threads, each with a connection, on a 100-connection server.
    with pytest.raises(SystemExit, match="DATABASE_MAX_CONNECTIONS=100"):
        _load(monkeypatch, GUNICORN_WORKERS=8, GUNICORN_THREADS=32)


def test_a_smaller_pool_lets_more_workers_share_the_budget(monkeypatch):
    conf = _load(monkeypatch, GUNICORN_WORKERS=8, GUNICORN_THREADS=32, DATABASE_POOL_MAX_SIZE=10)
    assert conf["connection_budget"](workers=8, threads=32)["total"] <= 100


def test_postgres_connections_are_pooled_and_health_checked(monkeypatch):
    monkeypatch.setenv("DATABASE_URL", "postgres://agent:pw@127.0.0.1:5432/agent")
    monkeypatch.delenv("DATABASE_POOL", raising=False)
    settings = runpy.run_path(str(CONF.parent / "settings.py"))
    database = settings["DATABASES"]["default"]
    assert database["CONN_HEALTH_CHECKS"] is True
    assert database["OPTIONS"]["pool"]["max_size"] >= 1
    assert database["OPTIONS"]["pool"]["timeout"] < 10  # a real outage answers 503 inside ManyChat's window


def test_without_the_pool_connections_persist_and_are_health_checked(monkeypatch):
    monkeypatch.setenv("DATABASE_URL", "postgres://agent:pw@127.0.0.1:5432/agent")
    monkeypatch.setenv("DATABASE_POOL", "0")
    monkeypatch.delenv("DATABASE_CONN_MAX_AGE", raising=False)
    database = runpy.run_path(str(CONF.parent / "settings.py"))["DATABASES"]["default"]
    assert database["CONN_HEALTH_CHECKS"] is True
    assert database["CONN_MAX_AGE"] > 0
    assert "pool" not in database["OPTIONS"]
