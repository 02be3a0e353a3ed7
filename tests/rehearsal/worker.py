"""A real Celery worker in its own process (and process group), for the rehearsal's crash test and its
benchmark: started against a PostgreSQL database and a Redis broker, killed with SIGKILL, started again."""

import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]


def wait_until(check: Any, timeout: float, every: float = 0.1) -> bool:
    limit = time.monotonic() + timeout
    while time.monotonic() < limit:
        if check():
            return True
        time.sleep(every)
    return bool(check())


class Worker:
    def __init__(
        self, *, database_url: str, broker_url: str, openai_url: str, concurrency: int = 2, **env: str
    ):
        self.env = {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "config.settings",
            "DJANGO_DEBUG": "1",  # a test process: development settings (production ones need secrets)
            "DATABASE_URL": database_url,
            "CELERY_BROKER_URL": broker_url,
            "OPENAI_API_KEY": "sk-test-fake",
            "OPENAI_BASE_URL": openai_url,
            "OPENAI_MAX_RETRIES": "0",
            "DJANGO_LOG_LEVEL": "WARNING",
            **env,
        }
        self.env.pop("DJANGO_TEST_DB_NAME", None)
        self.concurrency = concurrency
        self.process: subprocess.Popen | None = None
        self.log = tempfile.NamedTemporaryFile(prefix="rehearsal-worker-", suffix=".log", delete=False)  # noqa: SIM115

    def start(self) -> "Worker":
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "celery",
                "-A",
                "config",
                "worker",
                "--pool",
                "prefork",
                "--concurrency",
                str(self.concurrency),
                "--loglevel",
                "WARNING",
                "--without-gossip",
                "--without-mingle",
                "--without-heartbeat",
            ],
            cwd=ROOT,
            env=self.env,
            stdout=self.log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group: a kill takes the pool children too
        )
        return self

    def kill(self) -> None:
        """SIGKILL the worker and every pool process at once: nothing is acknowledged or cleaned up."""
        assert self.process is not None
        os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=10)
        self.process = None

    def stop(self) -> None:
        if self.process is None:
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=10)
        self.process = None

    def output(self) -> str:
        return Path(self.log.name).read_text(errors="replace")[-4000:]
