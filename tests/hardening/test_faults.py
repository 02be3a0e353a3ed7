"""Faults: the model down, slow, failing or talking nonsense; Redis stopped while webhooks arrive; a Celery
worker killed mid-task; PostgreSQL unreachable. Through real processes and sockets, nothing patched.

tests/agent covers each model fault at the client level (retries, deadline, parsing); here each one goes
through the webhook and the retry path end to end, with the same invariant: the message is stored and
acknowledged, and once the model is back it gets exactly one reply.
"""

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from contextlib import contextmanager
from pathlib import Path

import pytest
from django.db import connection
from django.test import Client
from django.urls import reverse

from agent import selectors as agent_selectors
from agent import turn as agent_turn
from leads.models import DeliveryStatus, Message, MessageRole
from tests.factories import PromptVersionFactory
from tests.hardening.conftest import SECRET

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.django_db(transaction=True)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _wait(check, timeout: float) -> bool:
    limit = time.monotonic() + timeout
    while time.monotonic() < limit:
        if check():
            return True
        time.sleep(0.1)
    return False


def _post(body: dict) -> tuple[int, dict]:
    response = Client().post(
        reverse("webhooks:manychat"),
        data=json.dumps(body),
        content_type="application/json",
        HTTP_X_WEBHOOK_SECRET=SECRET,
    )
    return response.status_code, response.json()


def _one_reply_each() -> dict[int, int]:
    counts: dict[int, int] = {}
    for inbound in Message.objects.filter(role=MessageRole.LEAD):
        counts[inbound.pk] = Message.objects.filter(in_reply_to=inbound, role=MessageRole.AGENT).count()
    return counts


@pytest.fixture
def agent_settings(webhook_secret, settings, fake_openai, fake_manychat):
    settings.AGENT_WEBHOOK_RATE_LIMIT = ""
    settings.AGENT_RETRY_AFTER_SECONDS = 0
    settings.AGENT_REPLY_DEADLINE_SECONDS = 1.5
    settings.AGENT_MIN_MODEL_SECONDS = 0  # the model is tried within the short deadline (its faults tested)
    settings.OPENAI_MAX_RETRIES = 0
    settings.CELERY_TASK_ALWAYS_EAGER = True
    PromptVersionFactory(is_active=True)
    return settings


# --- The model --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("fault", ["down", "slow", "error_500", "garbage"])
def test_model_fault_acknowledges_then_the_retry_answers_once(
    agent_settings, fake_openai, fake_manychat, fault
):
    from config.celery import app

    eager = app.conf.task_always_eager
    app.conf.task_always_eager = True
    if fault == "down":
        agent_settings.OPENAI_BASE_URL = f"http://127.0.0.1:{_free_port()}/v1"
    elif fault == "slow":
        fake_openai.reply_with({"reply": "Late but here."}, delay=3.0)
    elif fault == "error_500":
        fake_openai.set_default(fake_openai.error(500))
    else:
        fake_openai.set_default(fake_openai.garbage())
    try:
        status, body = _post({"subscriber_id": "5150", "text": "Are you open on Sundays?"})
        assert status == 200 and body["version"] == "v2"
        inbound = Message.objects.get(role=MessageRole.LEAD)
        if fault == "slow":
            # Past the deadline: a holding (empty) answer now, the background turn delivers the reply.
            assert body["content"]["messages"] == []
            assert fake_manychat.wait_for_calls(1, timeout=15)
            assert fake_manychat.sent_texts() == ["Late but here."]
        else:
            assert body["content"]["messages"][0]["text"] == agent_settings.AGENT_FALLBACK_TEXT
            inbound.refresh_from_db()
            assert inbound.delivery_status == DeliveryStatus.FAILED and inbound.attempts == 1
            due = agent_selectors.turn_list_incomplete()
            assert due["unanswered"] == [inbound.pk]
            # The model comes back; the sweep's turn answers and delivers exactly once, however often run.
            agent_settings.OPENAI_BASE_URL = fake_openai.base_url
            fake_openai.reply_with({"reply": "Yes, 9 to 5."})
            assert agent_turn.turn_complete(message_id=inbound.pk) == "delivered"
            assert agent_turn.turn_complete(message_id=inbound.pk) == "already_done"
            assert fake_manychat.sent_texts() == ["Yes, 9 to 5."]
        replies = Message.objects.filter(in_reply_to=inbound, role=MessageRole.AGENT)
        assert replies.count() == 1
    finally:
        deadline = time.monotonic() + 10
        for thread in threading.enumerate():
            if thread.name.startswith("agent-turn-"):
                thread.join(max(0.0, deadline - time.monotonic()))
        app.conf.task_always_eager = eager


# --- Redis ------------------------------------------------------------------------------------------------


@contextmanager
def _redis_server(port: int):
    if shutil.which("redis-server") is None:
        pytest.skip("redis-server is not installed")
    workdir = tempfile.mkdtemp(prefix="hardening-redis-")
    process = subprocess.Popen(
        ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
        cwd=workdir,
        stdout=subprocess.DEVNULL,
    )
    try:
        import redis

        assert _wait(lambda: _ping(redis.Redis(port=port)), 10), "redis-server did not start"
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        process.terminate()
        process.wait(timeout=10)
        shutil.rmtree(workdir, ignore_errors=True)


def _ping(client) -> bool:
    try:
        return bool(client.ping())
    except Exception:  # noqa: BLE001 - not up yet
        return False


@contextmanager
def _broker(app, url: str):
    from tests.agent.test_celery_worker import _reset_pool

    previous = {key: app.conf[key] for key in ("broker_url", "task_always_eager", "result_backend")}
    app.conf.update(broker_url=url, task_always_eager=False, result_backend=None)
    _reset_pool(app)
    try:
        yield
    finally:
        app.conf.update(**previous)
        _reset_pool(app)


def test_redis_stopped_while_webhooks_arrive(agent_settings, fake_openai, fake_manychat):
    from celery.contrib.testing.worker import start_worker

    from agent.tasks import retry_incomplete_turns
    from config.celery import app
    from tests.agent.test_celery_worker import _reset_pool

    if connection.vendor != "postgresql":
        pytest.skip(
            "worker threads and the test share one in-memory SQLite: table locks (CI runs PostgreSQL)"
        )
    agent_settings.CELERY_TASK_ALWAYS_EAGER = False
    agent_settings.AGENT_ASYNC_MODE = True
    fake_openai.reply_with({"reply": "Back online."})
    port = _free_port()
    with _broker(app, f"redis://127.0.0.1:{port}/0"):
        with _redis_server(port):
            before = [_post({"subscriber_id": f"7{i}", "text": "hello before"}) for i in range(2)]
        # Redis is gone (and with it the queued tasks: it keeps nothing on disk).
        during = [_post({"subscriber_id": f"7{i}", "text": "hello during"}) for i in range(3)]
        assert [status for status, _ in before + during] == [200] * 5
        # The holding (empty) answer, not the fallback line: the sweep's reply will be the lead's only one.
        assert [body["content"]["messages"] for _, body in during] == [[]] * 3
        assert Message.objects.filter(role=MessageRole.LEAD).count() == 5
        assert fake_openai.calls == 0
        due = agent_selectors.turn_list_incomplete()
        assert len(due["unanswered"]) == 5  # every acknowledged message waits for the sweep
        with _redis_server(port):
            _reset_pool(app)  # drop the connections the outage broke
            worker = start_worker(
                app, pool="threads", concurrency=2, perform_ping_check=False, shutdown_timeout=10
            )
            with worker:
                retry_incomplete_turns.delay()
                delivered = fake_manychat.wait_for_calls(5, timeout=30)
                assert delivered, (fake_openai.calls, len(fake_manychat.sent()))
                time.sleep(0.5)  # a duplicate delivery would show up now
    connection.close()
    assert _one_reply_each() == dict.fromkeys(
        Message.objects.filter(role=MessageRole.LEAD).values_list("pk", flat=True), 1
    )
    assert len(fake_manychat.sent()) == 5
    assert fake_openai.calls == 5


# --- A Celery worker killed mid-task ----------------------------------------------------------------------


def _children(pid: int) -> list[int]:
    result = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True, check=False)
    return [int(line) for line in result.stdout.split()]


def test_worker_killed_mid_task_is_redelivered_and_completes_once(agent_settings, fake_openai, fake_manychat):
    if connection.vendor != "postgresql":
        pytest.skip("the worker is another process: it needs the PostgreSQL test database (CI runs it)")
    from config.celery import app

    agent_settings.CELERY_TASK_ALWAYS_EAGER = False
    agent_settings.AGENT_ASYNC_MODE = True
    fake_openai.reply_with({"reply": "Slow first answer."}, delay=6.0)
    port = _free_port()
    database = connection.settings_dict
    with _redis_server(port) as redis_url, _broker(app, redis_url):
        env = {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "config.settings",
            "DATABASE_URL": f"postgres://{database['USER']}@{database['HOST']}:{database['PORT']}/{database['NAME']}",
            "CELERY_BROKER_URL": redis_url,
            "OPENAI_API_KEY": "sk-test-fake",
            "OPENAI_BASE_URL": fake_openai.base_url,
            "OPENAI_MAX_RETRIES": "0",
            "MANYCHAT_API_BASE_URL": fake_manychat.url,
            "MANYCHAT_API_TOKEN": fake_manychat.token,
            "DJANGO_LOG_LEVEL": "WARNING",
        }
        env.pop("DJANGO_TEST_DB_NAME", None)
        log = tempfile.NamedTemporaryFile(prefix="hardening-worker-", suffix=".log", delete=False)  # noqa: SIM115
        worker = subprocess.Popen(
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
                "1",
                "--loglevel",
                "INFO",
                "--without-gossip",
                "--without-mingle",
                "--without-heartbeat",
            ],
            cwd=ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        try:
            status, _ = _post({"subscriber_id": "9009", "text": "Kill me softly"})
            assert status == 200
            assert _wait(lambda: fake_openai.calls >= 1, 30), "the worker never started the turn"
            children = _children(worker.pid)
            assert len(children) == 1
            fake_openai.reply_with({"reply": "Answered after the crash."})
            os.kill(children[0], signal.SIGKILL)  # the process running the task, mid model call
            assert fake_manychat.wait_for_calls(1, timeout=60), Path(log.name).read_text()[-3000:]
            time.sleep(1.0)  # a second delivery would show up now
            assert _children(worker.pid) and _children(worker.pid) != children  # a new process took over
        finally:
            worker.send_signal(signal.SIGTERM)
            try:
                worker.wait(timeout=20)
            except subprocess.TimeoutExpired:
                worker.kill()
    assert "WorkerLostError" in Path(log.name).read_text() or "SIGKILL" in Path(log.name).read_text()
    assert fake_manychat.sent_texts() == ["Answered after the crash."]
    assert fake_openai.calls == 2
    inbound = Message.objects.get(role=MessageRole.LEAD)
    assert list(Message.objects.filter(in_reply_to=inbound).values_list("text", flat=True)) == [
        "Answered after the crash."
    ]


# --- PostgreSQL unreachable -------------------------------------------------------------------------------

UNREACHABLE = """
import json, django
django.setup()
from django.test import Client
response = Client().post("/webhooks/manychat/", data=json.dumps({"subscriber_id": "1", "text": "hi"}),
                         content_type="application/json", HTTP_X_WEBHOOK_SECRET=%r)
print(json.dumps({"status": response.status_code, "body": response.json(),
                  "retry_after": response.get("Retry-After")}))
"""


def test_database_unreachable_answers_503_and_acknowledges_nothing(fake_openai):
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "DJANGO_SETTINGS_MODULE": "config.settings",
        "DJANGO_DEBUG": "1",
        "DATABASE_URL": f"postgres://postgres@127.0.0.1:{_free_port()}/nowhere",
        "MANYCHAT_WEBHOOK_SECRET": SECRET,
        "OPENAI_API_KEY": "sk-test-fake",
        "OPENAI_BASE_URL": fake_openai.base_url,
        "DJANGO_LOG_LEVEL": "CRITICAL",
    }
    result = subprocess.run(
        [sys.executable, "-c", UNREACHABLE % SECRET],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    answer = json.loads(result.stdout.strip().splitlines()[-1])
    assert answer["status"] == 503 and answer["retry_after"]
    assert "content" not in answer["body"]  # no Dynamic Block: ManyChat is not told it was handled
    assert fake_openai.calls == 0


def test_broker_down_in_sync_mode_still_answers_once_and_figures_catch_up(agent_settings, fake_openai):
    """The reply is stored and returned although its performance task cannot be queued; no fallback line,
    so the lead is not answered twice; the beat's reconcile credits the version later."""
    from config.celery import app
    from prompts.models import PromptVersion
    from prompts.services import prompt_figures_reconcile

    agent_settings.CELERY_TASK_ALWAYS_EAGER = False
    fake_openai.reply_with({"reply": "We are open 9 to 5."})
    with _broker(app, f"redis://127.0.0.1:{_free_port()}/0"):
        status, body = _post({"subscriber_id": "7007", "text": "When are you open?"})
    assert status == 200
    assert [m["text"] for m in body["content"]["messages"]] == ["We are open 9 to 5."]
    assert _one_reply_each() == {Message.objects.get(role=MessageRole.LEAD).pk: 1}
    version = PromptVersion.objects.get(is_active=True)
    assert version.total_conversations == 0  # the task never ran
    assert prompt_figures_reconcile()["replies"] == 1
    version.refresh_from_db()
    assert (version.total_conversations, version.total_replies) == (1, 1)
