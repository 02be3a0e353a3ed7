"""deploy/backup.sh and deploy/restore-check.sh against a real PostgreSQL (a scratch database on CI)."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from django.db import connection

ROOT = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.django_db(transaction=True)


def _server_url() -> str:
    settings = connection.settings_dict
    user = settings.get("USER") or "postgres"
    host = settings.get("HOST") or "127.0.0.1"
    port = settings.get("PORT") or 5432
    return f"postgres://{user}@{host}:{port}"


def test_a_dump_restores_and_passes_verify_schema(tmp_path):
    if connection.vendor != "postgresql":
        pytest.skip("backups are PostgreSQL dumps; this run is on SQLite (CI runs it on PostgreSQL)")
    if shutil.which("pg_dump") is None:
        pytest.fail("pg_dump is not installed")
    from tests.factories import LeadFactory

    LeadFactory(first_name="Backed", last_name="Up")
    url = f"{_server_url()}/{connection.settings_dict['NAME']}"
    env = {**os.environ, "DATABASE_URL": url, "PYTHON": sys.executable}
    dumped = subprocess.run(
        ["bash", "deploy/backup.sh", str(tmp_path)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert dumped.returncode == 0, dumped.stderr
    dump = Path(dumped.stdout.strip().splitlines()[-1])
    assert dump.exists() and dump.stat().st_size > 0

    checked = subprocess.run(
        ["bash", "deploy/restore-check.sh", str(dump)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "✅ leads - 1 rows" in checked.stdout
    assert "restore check passed" in checked.stdout


def test_restore_check_fails_on_a_broken_dump(tmp_path):
    if connection.vendor != "postgresql":
        pytest.skip("backups are PostgreSQL dumps; this run is on SQLite (CI runs it on PostgreSQL)")
    broken = tmp_path / "broken.dump"
    broken.write_bytes(b"not a dump")
    env = {**os.environ, "DATABASE_URL": f"{_server_url()}/{connection.settings_dict['NAME']}"}
    checked = subprocess.run(
        ["bash", "deploy/restore-check.sh", str(broken)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert checked.returncode != 0
