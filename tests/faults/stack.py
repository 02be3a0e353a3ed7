"""The production shape on loopback, for the fault suite and bench/load_test.py.

gunicorn with config/gunicorn.conf.py, a Celery prefork worker and beat, a private redis-server, a database
of its own (on the CI PostgreSQL, or on a private cluster started here with initdb/pg_ctl under /tmp on
another port), DJANGO_DEBUG=0, and the fake model and fake ManyChat from tests/fakes served from this
process. Nothing here touches the shared PostgreSQL server beyond creating and dropping its own database.
"""

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psycopg

ROOT = Path(__file__).resolve().parents[2]
SECRET = "faults-webhook-secret-" + "x" * 20
PG_BIN = Path(os.environ.get("PG_BIN", "/usr/lib/postgresql/15/bin"))


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_until(check: Callable[[], Any], timeout: float, what: str) -> Any:
    limit = time.monotonic() + timeout
    last: Exception | None = None
    while time.monotonic() < limit:
        try:
            value = check()
            if value:
                return value
        except Exception as exc:  # noqa: BLE001 - not up yet
            last = exc
        time.sleep(0.1)
    raise TimeoutError(f"timed out waiting for {what} ({last})")


class Redis:
    def __init__(self, workdir: Path):
        self.port = free_port()
        self.dir = workdir / f"redis-{self.port}"
        self.dir.mkdir(parents=True)
        self.process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}"

    def start(self) -> None:
        self.process = subprocess.Popen(
            [
                "redis-server",
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
            ]
            + ["--dir", str(self.dir)],
            stdout=subprocess.DEVNULL,
        )
        import redis

        wait_until(lambda: redis.Redis(port=self.port).ping(), 15, "redis-server")

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            self.process.wait(timeout=10)
            self.process = None


class PrivatePostgres:
    """A PostgreSQL cluster of our own under /tmp, on its own port (never the shared 5432 server)."""

    def __init__(self, workdir: Path, *, max_connections: int = 100):
        self.port = free_port()
        self.dir = workdir / f"pg-{self.port}"
        self.max_connections = max_connections
        self.dir.mkdir(parents=True)
        self._as_postgres = os.geteuid() == 0
        if self._as_postgres:
            shutil.chown(workdir, "postgres")
            shutil.chown(self.dir, "postgres")
        self._run([str(PG_BIN / "initdb"), "-D", str(self.dir / "data"), "-A", "trust", "-U", "postgres"])
        with (self.dir / "data" / "postgresql.conf").open("a") as conf:
            conf.write(
                f"port = {self.port}\nlisten_addresses = '127.0.0.1'\n"
                f"unix_socket_directories = '{self.dir}'\n"
                f"max_connections = {max_connections}\nfsync = off\nsynchronous_commit = off\n"
                "full_page_writes = off\nshared_buffers = 64MB\n"
            )

    def _run(self, command: list[str]) -> None:
        if self._as_postgres:
            command = ["runuser", "-u", "postgres", "--", *command]
        subprocess.run(command, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    @property
    def admin_url(self) -> str:
        return f"postgres://postgres@127.0.0.1:{self.port}/postgres"

    def start(self) -> None:
        self._run(
            [str(PG_BIN / "pg_ctl"), "-D", str(self.dir / "data"), "-l", str(self.dir / "log"), "-w", "start"]
        )

    def stop(self) -> None:
        self._run([str(PG_BIN / "pg_ctl"), "-D", str(self.dir / "data"), "-m", "fast", "-w", "stop"])

    def restart(self) -> None:
        self._run([str(PG_BIN / "pg_ctl"), "-D", str(self.dir / "data"), "-m", "fast", "-w", "restart"])

    def remove(self) -> None:
        with contextlib.suppress(subprocess.CalledProcessError):
            self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)


def database_create(*, admin_url: str, name: str) -> str:
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')
    return admin_url.rsplit("/", 1)[0] + f"/{name}"


def database_drop(*, admin_url: str, name: str) -> None:
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


class Stack:
    """gunicorn + Celery worker + beat on one database and one Redis, pointed at the fakes."""

    def __init__(
        self,
        *,
        workdir: Path,
        database_url: str,
        redis: Redis,
        model_url: str,
        manychat_url: str,
        manychat_token: str,
        env: dict[str, str] | None = None,
        web_threads: int = 8,
        web_workers: int = 2,
        celery_concurrency: int = 2,
    ):
        self.workdir = workdir
        self.database_url = database_url
        self.redis = redis
        self.port = free_port()
        self.processes: dict[str, subprocess.Popen] = {}
        self.celery_concurrency = celery_concurrency
        self.env = {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "config.settings",
            "DJANGO_DEBUG": "0",
            "DJANGO_SECRET_KEY": "faults-" + "Zq8wX2vR7tL4pK9m" * 4,
            "DJANGO_SECURE_SSL_REDIRECT": "0",
            "DJANGO_ALLOWED_HOSTS": "127.0.0.1,localhost",
            "DJANGO_LOG_LEVEL": "WARNING",
            "DATABASE_URL": database_url,
            "DATABASE_MAX_CONNECTIONS": "100",
            "CELERY_BROKER_URL": f"{redis.url}/0",
            "REDIS_URL": f"{redis.url}/1",
            "CELERY_CONCURRENCY": str(celery_concurrency),
            "MANYCHAT_WEBHOOK_SECRET": SECRET,
            "MANYCHAT_API_TOKEN": manychat_token,
            "MANYCHAT_API_BASE_URL": manychat_url,
            "MANYCHAT_API_TIMEOUT_SECONDS": "3",
            "MANYCHAT_THROTTLE_REDIS_URL": "",
            "OPENAI_API_KEY": "sk-faults-fake",
            "OPENAI_BASE_URL": model_url,
            "OPENAI_MAX_RETRIES": "0",
            "OPENAI_TIMEOUT_SECONDS": "20",
            "AGENT_WEBHOOK_RATE_LIMIT": "",
            "AGENT_REPLY_DEADLINE_SECONDS": "8",
            "AGENT_RETRY_AFTER_SECONDS": "6",
            "AGENT_RETRY_INTERVAL_SECONDS": "2",
            "AGENT_HOLDING_TEXT": "",
            "GUNICORN_WORKERS": str(web_workers),
            "GUNICORN_THREADS": str(web_threads),
            "GUNICORN_REQUEST_READ_TIMEOUT": "10",
            "PROMETHEUS_MULTIPROC_DIR": str(workdir / f"prometheus-{self.port}"),
            **(env or {}),
        }
        Path(self.env["PROMETHEUS_MULTIPROC_DIR"]).mkdir(parents=True, exist_ok=True)
        for name in ("TEST_REDIS_URL", "DJANGO_TEST_DB_NAME", "PYTEST_CURRENT_TEST"):
            self.env.pop(name, None)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def migrate(self) -> None:
        done = subprocess.run(
            [sys.executable, "manage.py", "migrate", "--noinput", "-v", "0"],
            cwd=ROOT,
            env=self.env,
            capture_output=True,
            text=True,
        )
        if done.returncode:
            raise RuntimeError(f"migrate failed on {self.database_url}:\n{done.stderr[-3000:]}")
        script = (
            "from prompts.models import PromptVersion as P\n"
            "P.objects.filter(is_active=True).update(is_active=False)\n"
            "n = (P.objects.order_by('-version').values_list('version', flat=True).first() or 0) + 1\n"
            "P.objects.create(version=n, is_active=True, content='You are Ava, a sales assistant for Acme "
            "Gyms. Memberships cost 30 euros a month.')\n"
        )
        subprocess.run(
            [sys.executable, "manage.py", "shell", "-c", script], cwd=ROOT, env=self.env, check=True
        )

    def _spawn(self, name: str, command: list[str]) -> subprocess.Popen:
        log = (self.workdir / f"{name}-{self.port}.log").open("ab")
        process = subprocess.Popen(
            command, cwd=ROOT, env=self.env, stdout=log, stderr=log, start_new_session=True
        )
        self.processes[name] = process
        return process

    def start_web(self) -> None:
        self._spawn(
            "web",
            [
                sys.executable,
                "-m",
                "gunicorn",
                "-c",
                "config/gunicorn.conf.py",
                "--bind",
                f"127.0.0.1:{self.port}",
            ]
            + ["config.wsgi"],
        )
        import httpx

        wait_until(
            lambda: httpx.post(f"{self.url}/webhooks/manychat/", timeout=2).status_code == 401, 60, "gunicorn"
        )

    def start_worker(self) -> None:
        self._spawn(
            "worker",
            [sys.executable, "-m", "celery", "-A", "config", "worker", "--pool", "prefork"]
            + ["--concurrency", str(self.celery_concurrency), "--loglevel", "INFO", "--without-gossip"]
            + ["--without-mingle", "--hostname", f"faults-{self.port}@%h"],
        )

    def start_beat(self) -> None:
        schedule = self.workdir / f"beat-{self.port}"
        self._spawn(
            "beat",
            [sys.executable, "-m", "celery", "-A", "config", "beat", "--loglevel", "INFO"]
            + ["--schedule", str(schedule)],
        )

    def start(self) -> "Stack":
        self.migrate()
        self.start_worker()
        self.start_beat()
        self.start_web()
        return self

    def kill(self, name: str, sig: int = signal.SIGKILL) -> None:
        """Kill one process (the main process only: children are left to notice by themselves)."""
        process = self.processes.pop(name)
        process.send_signal(sig)
        process.wait(timeout=30)

    def stop(self) -> None:
        for process in list(self.processes.values()):
            try:
                os.killpg(process.pid, signal.SIGTERM)
            except ProcessLookupError:
                continue
        for process in self.processes.values():
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
        self.processes.clear()

    # --- What the database says ---------------------------------------------------------------------------
    def query(self, sql: str, params: list[Any] | None = None) -> list[tuple]:
        with psycopg.connect(self.database_url, autocommit=True) as conn:
            return conn.execute(sql, params or []).fetchall()

    def inbound(self, prefix: str) -> dict[int, tuple[str, str]]:
        """Stored lead messages of subscribers starting with `prefix`: id -> (text, state)."""
        rows = self.query(
            "SELECT m.id, m.text, m.delivery_status FROM messages m "
            "JOIN conversations c ON c.id = m.conversation_id JOIN leads l ON l.id = c.lead_id "
            "WHERE m.role = 'lead' AND l.manychat_subscriber_id LIKE %s",
            [prefix + "%"],
        )
        return {row[0]: (row[1], row[2]) for row in rows}

    def replies(self, prefix: str) -> dict[int, list[tuple[str, str]]]:
        """Agent replies per inbound message: in_reply_to -> [(text, delivery_status)]."""
        rows = self.query(
            "SELECT m.in_reply_to_id, m.text, m.delivery_status FROM messages m "
            "JOIN conversations c ON c.id = m.conversation_id JOIN leads l ON l.id = c.lead_id "
            "WHERE m.role = 'agent' AND l.manychat_subscriber_id LIKE %s",
            [prefix + "%"],
        )
        found: dict[int, list[tuple[str, str]]] = {}
        for in_reply_to, text, status in rows:
            found.setdefault(in_reply_to, []).append((text, status))
        return found


def make_workdir() -> Path:
    path = Path(tempfile.mkdtemp(prefix="faults-"))
    os.chmod(path, 0o755)  # noqa: S103 - the private PostgreSQL runs as postgres and needs to enter it
    return path
