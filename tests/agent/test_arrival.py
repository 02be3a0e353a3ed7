"""The reply deadline counts from the request's arrival (config/arrival.py), not from the view.

Sources: the front proxy's X-Request-Start when sane, else the web worker's accept stamp
(config.gworker puts it into the WSGI environ), else the view's clock. A turn with less than
AGENT_MIN_MODEL_SECONDS left goes the async way at once: no model call in the request, the task answers
through sendContent.
"""

import json
import os
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest

from config.arrival import ARRIVED_AT_KEY, ArrivalSource, request_arrival, request_start_parse
from leads.models import DeliveryStatus, Message, MessageRole
from tests.agent.conftest import flat_body
from tests.agent.test_async import join_turn_threads
from tests.factories import PromptVersionFactory

NOW = 1_800_000_000.25  # a fixed wall clock (epoch seconds)


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("t=1800000000123456", 1_800_000_000.123456),  # microseconds (New Relic / Apache style)
        ("t=1800000000.123", 1_800_000_000.123),  # nginx t=${msec}
        ("1800000000123", 1_800_000_000.123),  # Heroku: milliseconds, no prefix
        ("1800000000", 1_800_000_000.0),  # seconds
        ("t=1800000000123456789", 1_800_000_000.123456789),  # nanoseconds
        (" t= 1800000000.5 ", 1_800_000_000.5),
        ("t=abc", None),
        ("", None),
        ("t=-5", None),
        ("nan", None),
        ("inf", None),
    ],
)
def test_x_request_start_formats(header, expected):
    parsed = request_start_parse(header)
    assert parsed == pytest.approx(expected, abs=1e-6) if expected is not None else parsed is None


@pytest.mark.parametrize(
    ("meta", "source", "at"),
    [
        # The proxy's header when present and sane: it counts the time queued before our server.
        ({"HTTP_X_REQUEST_START": f"t={int((NOW - 3) * 1e6)}"}, ArrivalSource.PROXY, NOW - 3),
        ({"HTTP_X_REQUEST_START": f"t={NOW - 3:.3f}", ARRIVED_AT_KEY: NOW - 1}, ArrivalSource.PROXY, NOW - 3),
        # A proxy clock a little ahead of ours never makes the request younger than our own stamp.
        (
            {"HTTP_X_REQUEST_START": f"t={NOW - 0.5:.3f}", ARRIVED_AT_KEY: NOW - 1},
            ArrivalSource.PROXY,
            NOW - 1,
        ),
        # Not sane: in the future, far in the past, garbage -> the server's accept stamp.
        (
            {"HTTP_X_REQUEST_START": f"t={NOW + 60:.3f}", ARRIVED_AT_KEY: NOW - 1},
            ArrivalSource.SERVER,
            NOW - 1,
        ),
        (
            {"HTTP_X_REQUEST_START": f"t={NOW - 3600:.3f}", ARRIVED_AT_KEY: NOW - 1},
            ArrivalSource.SERVER,
            NOW - 1,
        ),
        ({"HTTP_X_REQUEST_START": "yesterday", ARRIVED_AT_KEY: NOW - 2}, ArrivalSource.SERVER, NOW - 2),
        # No header: the server's stamp; a stamp in the future is ignored too.
        ({ARRIVED_AT_KEY: NOW - 2}, ArrivalSource.SERVER, NOW - 2),
        ({ARRIVED_AT_KEY: NOW + 5}, ArrivalSource.VIEW, NOW),
        ({}, ArrivalSource.VIEW, NOW),
        ({"HTTP_X_REQUEST_START": f"t={NOW + 60:.3f}"}, ArrivalSource.VIEW, NOW),
    ],
)
def test_arrival_sources(meta, source, at):
    arrival = request_arrival(meta=meta, wall_now=NOW)
    assert arrival.source is source
    assert arrival.at == pytest.approx(at)
    # As a monotonic instant: as far before "now" as the arrival was.
    assert arrival.monotonic(wall_now=NOW, monotonic_now=500.0) == pytest.approx(500.0 - (NOW - at))


# --- Through the webhook ---------------------------------------------------------------------------------


@pytest.fixture
def prompt(transactional_db):
    return PromptVersionFactory(is_active=True)


@pytest.fixture
def late(settings):
    settings.AGENT_REPLY_DEADLINE_SECONDS = 8.0
    settings.AGENT_MIN_MODEL_SECONDS = 2.0
    settings.AGENT_BURST_WINDOW_SECONDS = 0.0


def _x_request_start(seconds_ago: float) -> dict:
    return {"HTTP_X_REQUEST_START": f"t={int((time.time() - seconds_ago) * 1e6)}"}


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize(
    "arrived",
    [
        pytest.param(lambda: _x_request_start(6.5), id="x-request-start"),
        pytest.param(lambda: {ARRIVED_AT_KEY: time.time() - 6.5}, id="server-accept-stamp"),
    ],
)
def test_a_turn_that_arrived_too_long_ago_goes_async_at_once(
    webhook, prompt, late, fake_openai, fake_manychat, arrived
):
    fake_openai.reply_with({"reply": "Answered later through sendContent.", "qualified": False})
    response = webhook(flat_body(subscriber_id="5151"), **arrived())

    assert response.status_code == 200
    assert response.json() == {"version": "v2", "content": {"messages": []}}  # nothing in the body
    assert fake_manychat.wait_for_calls(1, timeout=10)
    join_turn_threads()
    assert fake_manychat.sent_texts() == ["Answered later through sendContent."]
    assert fake_openai.calls == 1  # the task's call only: none was started in the request
    inbound = Message.objects.get(role=MessageRole.LEAD)
    assert inbound.delivery_status == DeliveryStatus.ANSWERED
    assert Message.objects.get(in_reply_to=inbound).delivery_status == DeliveryStatus.SENT


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize(
    "arrived",
    [
        pytest.param(lambda: _x_request_start(1.0), id="x-request-start"),
        pytest.param(lambda: {ARRIVED_AT_KEY: time.time() - 1.0}, id="server-accept-stamp"),
        pytest.param(dict, id="no-stamp"),
        pytest.param(lambda: _x_request_start(-120), id="insane-header-ignored"),
    ],
)
def test_a_turn_with_time_left_is_answered_in_the_body(
    webhook, prompt, late, fake_openai, fake_manychat, arrived
):
    fake_openai.reply_with({"reply": "In the body.", "qualified": False})
    response = webhook(flat_body(subscriber_id="5252"), **arrived())
    assert [m["text"] for m in response.json()["content"]["messages"]] == ["In the body."]
    assert fake_manychat.sent_texts() == []


@pytest.mark.django_db(transaction=True)
def test_the_model_call_gets_only_what_is_left_of_the_window(
    webhook, prompt, late, fake_openai, fake_manychat
):
    """Arrived 4 s ago: 4 s are left, so a 5 s model times out after ~4 s (not 8) and the task answers."""
    fake_openai.enqueue(fake_openai.completion({"reply": "too late"}, delay=5))
    fake_openai.reply_with({"reply": "From the task.", "qualified": False})
    started = time.monotonic()
    response = webhook(flat_body(subscriber_id="5353"), **_x_request_start(4.0))
    elapsed = time.monotonic() - started
    assert response.json()["content"]["messages"] == []
    assert 3.0 < elapsed < 5.5
    assert fake_manychat.wait_for_calls(1, timeout=15)
    join_turn_threads()
    assert fake_manychat.sent_texts() == ["From the task."]


# --- The gunicorn worker stamps the accept time -------------------------------------------------------------

APP = """
import json, time
def app(environ, start_response):
    if environ["PATH_INFO"] == "/busy":
        time.sleep(1.5)
    body = json.dumps({"arrived_at": environ.get("dmagent.arrived_at"), "now": time.time()}).encode()
    start_response("200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(body)))])
    return [body]
"""


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_the_worker_stamps_the_time_a_request_waited_for_a_thread(tmp_path: Path):
    (tmp_path / "arrival_app.py").write_text(APP)
    port = _free_port()
    root = Path(__file__).resolve().parents[2]
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "gunicorn",
            "--worker-class",
            "config.gworker.BufferingThreadWorker",
            "--threads",
            "1",
            "--workers",
            "1",
            "--bind",
            f"127.0.0.1:{port}",
            "--log-level",
            "warning",
            "--chdir",
            str(tmp_path),
            "arrival_app:app",
        ],
        cwd=root,
        env={**os.environ, "PYTHONPATH": f"{root}{os.pathsep}{tmp_path}"},
    )
    base = f"http://127.0.0.1:{port}"
    try:
        limit = time.monotonic() + 20
        while True:
            try:
                httpx.get(f"{base}/ping", timeout=1)
                break
            except httpx.HTTPError:
                assert time.monotonic() < limit and server.poll() is None, "gunicorn did not start"
                time.sleep(0.1)
        busy = threading.Thread(target=httpx.get, args=(f"{base}/busy",), kwargs={"timeout": 10})
        busy.start()
        time.sleep(0.3)  # the one thread is now busy for ~1.2 s more
        sent = time.time()
        answer = json.loads(httpx.get(f"{base}/queued", timeout=10).text)
        busy.join()
    finally:
        server.terminate()
        server.wait(10)
    assert answer["arrived_at"] is not None
    assert abs(answer["arrived_at"] - sent) < 0.5  # stamped when it reached the server...
    assert answer["now"] - answer["arrived_at"] > 0.9  # ...not when a thread got to it
