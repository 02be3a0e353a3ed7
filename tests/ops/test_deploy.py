"""The deployment files, checked as far as this machine allows (no Docker daemon, no systemd running)."""

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import jsonschema
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]


def _compose() -> dict:
    return yaml.safe_load((ROOT / "compose.yaml").read_text())


def test_compose_file_follows_the_compose_specification():
    schema = json.loads((ROOT / "deploy" / "compose-spec.schema.json").read_text())
    jsonschema.Draft7Validator(schema).validate(_compose())


def test_compose_runs_every_process_with_a_health_check():
    services = _compose()["services"]
    assert {"web", "worker", "beat", "db", "redis", "migrate"} <= set(services)
    for name in ("web", "worker", "beat", "db", "redis"):
        assert "healthcheck" in services[name], f"{name} has no health check"
    assert "/readyz" in json.dumps(services["web"]["healthcheck"])
    # The app waits for a migrated, verified database.
    assert services["web"]["depends_on"]["migrate"]["condition"] == "service_completed_successfully"
    assert "verify_schema" in json.dumps(services["migrate"]["command"])


def test_dockerfile_copies_only_files_that_exist():
    dockerfile = (ROOT / "Dockerfile").read_text()
    sources = []
    for line in dockerfile.splitlines():
        match = re.match(r"^COPY\s+(?!--)(.+)\s+\S+$", line.strip())
        if match:
            sources.extend(match.group(1).split())
    assert sources, "no COPY lines found"
    missing = [source for source in sources if not (ROOT / source).exists()]
    assert missing == []
    assert "config/gunicorn.conf.py" in dockerfile and (ROOT / "config" / "gunicorn.conf.py").exists()
    ignored = (ROOT / ".dockerignore").read_text().split()
    assert ".venv" in ignored and ".git" in ignored


def test_procfile_names_the_same_processes():
    entries = dict(
        line.split(":", 1) for line in (ROOT / "Procfile").read_text().splitlines() if line and line[0] != "#"
    )
    assert set(entries) == {"release", "web", "worker", "beat"}
    assert "config/gunicorn.conf.py" in entries["web"]
    assert "celery -A config worker" in entries["worker"]


def test_systemd_units_pass_systemd_analyze_verify(tmp_path):
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        if os.environ.get("CI"):
            pytest.fail("systemd-analyze is missing on the CI machine")
        pytest.skip("systemd-analyze is not installed here")
    venv = ROOT / ".venv"
    units = sorted((ROOT / "deploy" / "systemd").glob("*.service"))
    assert {u.name for u in units} == {
        "dm-agent-web.service",
        "dm-agent-worker.service",
        "dm-agent-beat.service",
    }
    for unit in units:
        # The units name the install path /srv/dm-agent: point them at this checkout so the commands exist.
        text = unit.read_text().replace("/srv/dm-agent/.venv", str(venv)).replace("/srv/dm-agent", str(ROOT))
        (tmp_path / unit.name).write_text(text)
    result = subprocess.run(
        [analyze, "verify", *[str(tmp_path / u.name) for u in units]],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    # Unknown keys are only warnings to systemd-analyze: treat any complaint as a failure.
    complaints = [line for line in result.stderr.splitlines() if str(tmp_path) in line or "dm-agent" in line]
    assert complaints == []


def test_grafana_dashboard_only_charts_metrics_the_app_exports():
    from prometheus_client import REGISTRY

    import config.metrics  # noqa: F401 - registers the event metrics

    dashboard = json.loads((ROOT / "deploy" / "grafana-dashboard.json").read_text())
    exported = set(REGISTRY._names_to_collectors)  # every sample name, e.g. ..._bucket, ..._total
    exported |= {"dmagent_sweep_backlog", "dmagent_celery_queue_depth", "dmagent_leads_waiting_for_person"}
    charted = set()
    for panel in dashboard["panels"]:
        for target in panel["targets"]:
            charted |= set(re.findall(r"dmagent_[a-z_]+", target["expr"]))
    assert charted, "the dashboard charts nothing"
    unknown = sorted(name for name in charted if name not in exported)
    assert unknown == []


def test_the_turn_task_can_have_a_queue_of_its_own(tmp_path):
    script = (
        "import django, os\n"
        "os.environ.setdefault('DJANGO_SETTINGS_MODULE', 'config.settings')\n"
        "django.setup()\n"
        "from config.celery import app\n"
        "print(app.amqp.router.route({}, 'agent.complete_turn')['queue'].name)\n"
    )
    env = {**os.environ, "AGENT_TURN_QUEUE": "turns", "DJANGO_DEBUG": "1"}
    out = subprocess.run(
        [sys.executable, "-c", script], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip().splitlines()[-1] == "turns"


def test_gunicorn_can_load_its_worker_class_before_the_metrics_directory_exists(tmp_path):
    """gunicorn imports config.gworker (so the config package) before any hook runs: no metric may be
    created on that import, or multiprocess mode fails on a directory that does not exist yet."""
    env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(tmp_path / "not-yet"), "DJANGO_DEBUG": "1"}
    out = subprocess.run(
        [sys.executable, "-c", "import config, config.gworker"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
    )
    assert out.returncode == 0, out.stderr
