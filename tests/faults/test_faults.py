"""Real faults against the production shape (tests/faults/stack.py), each ending in the same check: every
message that got a 200 or was stored reached the lead exactly once, nothing was delivered twice.

Each scenario uses its own subscriber ids (digits, like ManyChat contact ids) so they can share the stack.
"""

import contextlib
import json
import random
import signal
import socket
import threading
import time
import uuid

import httpx
import pytest

from tests.faults.conftest import (
    REPLY_PREFIX,
    Ledger,
    exactly_once,
    post_webhook,
    wait_answered,
)
from tests.faults.stack import SECRET, PrivatePostgres, Redis, Stack, database_create, wait_until

pytestmark = pytest.mark.faults


def _prefix() -> str:
    return "7" + str(uuid.uuid4().int % 10**9).zfill(9)


def _body(prefix: str, i: int, text: str | None = None, **extra) -> dict:
    return {
        "subscriber_id": f"{prefix}{i:04d}",
        "text": text or f"question {i} from {prefix}",
        "message_id": f"{prefix}-{i}",
        "channel": "instagram",
        "first_name": "Fault",
        **extra,
    }


def _client(stack: Stack) -> httpx.Client:
    return httpx.Client(base_url=stack.url, headers={"X-Webhook-Secret": SECRET})


def _assert_exactly_once(figures: dict) -> None:
    assert figures["twice"] == 0, figures
    assert figures["lost"] == 0, figures
    assert figures["not_stored_but_acknowledged"] == 0, figures
    assert figures["one_reply_each"], figures


def test_client_gives_up_and_retries_during_a_slow_turn(stack, model, manychat):
    """ManyChat gives up on a slow first attempt (here at 2 s, standing in for its 10 s) and sends the
    message again at once: the lead gets the reply exactly once (D1)."""
    ledger = Ledger("client-gives-up-and-retries", _prefix())
    model.delay = 4.0
    bodies = [_body(ledger.prefix, i) for i in range(4)]

    def one(body):
        with _client(stack) as http:
            post_webhook(http, ledger=ledger, body=body, timeout=2.0)  # gives up
            post_webhook(http, ledger=ledger, body=body, timeout=10.0)  # the retry

    threads = [threading.Thread(target=one, args=(body,)) for body in bodies]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    wait_answered(stack=stack, ledger=ledger, manychat=manychat, timeout=60)
    figures = exactly_once(stack=stack, ledger=ledger, manychat=manychat)
    assert figures["stored"] == len(bodies)
    _assert_exactly_once(figures)


def test_send_content_accepted_but_answered_late(stack, model, manychat):
    """The model is slower than the reply deadline, so the worker delivers through sendContent, and
    ManyChat takes each send but answers after our client's timeout: never sent twice (D2)."""
    ledger = Ledger("sendcontent-answered-late", _prefix())
    model.delay = 9.0  # past AGENT_REPLY_DEADLINE_SECONDS (8): the webhook answers empty
    manychat.set_default(manychat.accepted_late(delay=5.0))  # past MANYCHAT_API_TIMEOUT_SECONDS (3)
    bodies = [_body(ledger.prefix, i) for i in range(3)]
    threads = []
    for body in bodies:

        def one(body=body):
            with _client(stack) as http:
                post_webhook(http, ledger=ledger, body=body, timeout=10.0)

        threads.append(threading.Thread(target=one))
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    wait_answered(stack=stack, ledger=ledger, manychat=manychat, timeout=60)
    time.sleep(8)  # any blind resend (client retry, Celery retry, sweep) would arrive by now
    figures = exactly_once(stack=stack, ledger=ledger, manychat=manychat)
    assert figures["stored"] == len(bodies)
    _assert_exactly_once(figures)


def test_redis_stopped_and_started(stack, model, manychat):
    ledger = Ledger("redis-stopped-started", _prefix())
    stack.redis.stop()
    try:
        with _client(stack) as http:
            for i in range(6):
                post_webhook(http, ledger=ledger, body=_body(ledger.prefix, i), timeout=10.0)
    finally:
        stack.redis.start()
    wait_answered(stack=stack, ledger=ledger, manychat=manychat, timeout=90)
    figures = exactly_once(stack=stack, ledger=ledger, manychat=manychat)
    assert figures["stored"] == 6
    _assert_exactly_once(figures)


def test_worker_killed_with_sigkill_mid_turn(stack, model, manychat):
    ledger = Ledger("worker-sigkill", _prefix())
    model.delay = 10.0  # the webhook gives up at the deadline; the worker's turn waits on the model
    threads = []
    for i in range(3):

        def one(i=i):
            with _client(stack) as http:
                post_webhook(http, ledger=ledger, body=_body(ledger.prefix, i), timeout=10.0)

        threads.append(threading.Thread(target=one))
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    wait_until(lambda: model.calls >= 6, 20, "the worker's model calls")
    stack.kill("worker", signal.SIGKILL)
    model.delay = 0.5
    time.sleep(2)
    stack.start_worker()
    wait_answered(stack=stack, ledger=ledger, manychat=manychat, timeout=120)
    figures = exactly_once(stack=stack, ledger=ledger, manychat=manychat)
    assert figures["stored"] == 3
    _assert_exactly_once(figures)


def _slow_connection(port: int, *, body: bool) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port))
    if body:  # headers complete (with the secret), the body trickles
        sock.sendall(
            b"POST /webhooks/manychat/ HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
            + f"X-Webhook-Secret: {SECRET}\r\nContent-Length: 4000\r\n\r\n".encode()
            + b'{"subscriber_id": "'
        )
    else:  # headers never finish (no secret needed)
        sock.sendall(b"POST /webhooks/manychat/ HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ")
    return sock


def test_seventy_slow_clients_beside_real_webhooks(stack, model, manychat):
    """70 connections trickling bodies or headers hold no thread (config.gworker): real webhooks are
    answered inside ManyChat's 10 s window (D8)."""
    ledger = Ledger("70-slow-clients", _prefix())
    model.delay = 1.0
    slow = [_slow_connection(stack.port, body=i % 2 == 0) for i in range(70)]
    stop = threading.Event()

    def trickle():
        while not stop.wait(1.0):
            for sock in slow:
                with contextlib.suppress(OSError):
                    sock.send(b"1")

    trickler = threading.Thread(target=trickle, daemon=True)
    trickler.start()
    try:
        time.sleep(1)
        threads = []
        for i in range(10):

            def one(i=i):
                with _client(stack) as http:
                    post_webhook(http, ledger=ledger, body=_body(ledger.prefix, i), timeout=10.0)

            threads.append(threading.Thread(target=one))
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    finally:
        stop.set()
        for sock in slow:
            sock.close()
    figures = exactly_once(stack=stack, ledger=ledger, manychat=manychat)
    # Each real webhook was answered in its own response, within the 10 s the client waited.
    assert (
        sum(ledger.returned.get(REPLY_PREFIX + _body(ledger.prefix, i)["text"], 0) for i in range(10)) == 10
    )
    _assert_exactly_once(figures)


def _hostile(prefix: str, rng: random.Random) -> list[tuple[bytes, dict | None]]:
    """(raw body, the valid message it carries or None): 200 bodies a hostile or broken client may send."""
    bodies: list[tuple[bytes, dict | None]] = []
    for i in range(40):
        body = _body(prefix, i)
        bodies.append((str(body).encode(), None))  # Python repr, not JSON
    deep = b'{"subscriber_id":"%s","text":"x","a":' % prefix.encode()
    for depth in (100, 1000, 20_000):
        bodies.append((deep + b"[" * depth + b"]" * depth + b"}", None))
    for i in range(40, 80):
        body = _body(prefix, i, text=f"surrogate \\ud800 and nul \\u0000 number {i}")
        bodies.append((json.dumps(body).replace("\\\\u", "\\u").encode(), body))
    for _ in range(80, 110):
        raw = bytes(rng.randrange(256) for _ in range(rng.randrange(1, 400)))
        bodies.append((raw, None))
    for _ in range(110, 140):
        wrong = {"subscriber_id": [1], "text": {"a": 1}, "channel": 5}
        bodies.append((str(wrong).replace("'", '"').encode(), None))
    for i in range(140, 160):
        bodies.append((b'{"subscriber_id": "%s%04d", "text": NaN}' % (prefix.encode(), i), None))
    for _ in range(160, 180):
        bodies.append((b"x" * (70 * 1024), None))  # over the 64 KiB limit: 413
    for i in range(180, 200 - 3):
        body = _body(prefix, i, text=f"emoji cut {i} \\ud83d" + "é" * rng.randrange(50))
        bodies.append((json.dumps(body).replace("\\\\u", "\\u").encode(), body))
    return bodies


def test_two_hundred_hostile_bodies(stack, model, manychat):
    ledger = Ledger("200-hostile-bodies", _prefix())
    bodies = _hostile(ledger.prefix, random.Random(13))
    assert len(bodies) == 200
    statuses: dict[int | str, int] = {}
    with _client(stack) as http:
        for raw, _valid in bodies:
            try:
                response = http.post(
                    "/webhooks/manychat/",
                    content=raw,
                    headers={"Content-Type": "application/json"},
                    timeout=10,
                )
            except httpx.HTTPError as exc:
                ledger.record(text="", status=None, body=None)
                statuses[type(exc).__name__] = statuses.get(type(exc).__name__, 0) + 1
                continue
            statuses[response.status_code] = statuses.get(response.status_code, 0) + 1
            body = response.json() if response.status_code == 200 else None
            text = _valid["text"] if _valid else ""
            ledger.record(
                text=text if response.status_code == 200 else "", status=response.status_code, body=body
            )
    ledger.acknowledged.discard("")
    # Every body got an answer (none hung the connection), and none a 5xx.
    assert all(isinstance(code, int) and code < 500 for code in statuses), statuses
    # The valid ones among them were stored and answered, with their text cleaned (U+FFFD, no NUL).
    inbound = stack.inbound(ledger.prefix)
    assert len(inbound) == sum(1 for _, valid in bodies if valid)
    assert all("\x00" not in text and "\ufffd" in text for text, _ in inbound.values())
    # The cleaned text is what was stored and answered; map the acknowledgements to it.
    ledger.acknowledged = {text for text, _ in inbound.values()}
    figures = exactly_once(stack=stack, ledger=ledger, manychat=manychat)
    _assert_exactly_once(figures)


def test_postgresql_restarted_under_traffic(faults_env, model, manychat):
    """A private cluster (never the shared one), restarted while webhooks arrive: after it is back no
    webhook is refused (D3), and every acknowledged message is answered exactly once."""
    workdir = faults_env["workdir"]
    cluster = PrivatePostgres(workdir / "pg")
    cluster.start()
    redis = Redis(workdir)
    redis.start()
    database_url = database_create(admin_url=cluster.admin_url, name="faults_restart")
    stack = Stack(
        workdir=workdir,
        database_url=database_url,
        redis=redis,
        model_url=model.base_url,
        manychat_url=manychat.url,
        manychat_token=manychat.token,
        web_threads=16,
        env={"AGENT_BURST_WINDOW_SECONDS": "0"},  # one reply per message (no bursts here)
    )
    ledger = Ledger("postgresql-restarted", _prefix())
    try:
        stack.start()
        model.delay = 0.2
        with _client(stack) as http:  # warm every pooled connection first
            for i in range(16):
                post_webhook(http, ledger=ledger, body=_body(ledger.prefix, i), timeout=10.0)
        cluster.restart()
        after: list[int | None] = []
        lock = threading.Lock()

        def one(i):
            with _client(stack) as http:
                response = post_webhook(http, ledger=ledger, body=_body(ledger.prefix, i), timeout=10.0)
            with lock:
                after.append(response.status_code if response is not None else None)

        threads = [threading.Thread(target=one, args=(i,)) for i in range(16, 64)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert after.count(200) == len(after), after
        wait_answered(stack=stack, ledger=ledger, manychat=manychat, timeout=30)
        figures = exactly_once(stack=stack, ledger=ledger, manychat=manychat)
        assert figures["stored"] == 64
        _assert_exactly_once(figures)
    finally:
        stack.stop()
        redis.stop()
        cluster.remove()
