"""The fault suite's stack (tests/faults/stack.py), started once per session, and the per-scenario ledger.

Runs by default on PostgreSQL (as in CI) and alone with `-m faults`. On SQLite it is skipped outside CI
(the production shape needs PostgreSQL); in CI it fails instead of skipping.
"""

import json
import os
import shutil
import threading
from dataclasses import dataclass, field

import pytest

from tests.fakes.base import CapturedRequest, Reply
from tests.fakes.fake_manychat import FakeManyChat
from tests.fakes.fake_openai import FakeOpenAI
from tests.faults.stack import Redis, Stack, database_create, database_drop, make_workdir

SUMMARY: list[str] = []
REPLY_PREFIX = "Answer to: "


class EchoModel(FakeOpenAI):
    """Answers each lead message with "Answer to: <its text>" after `delay` seconds, so every reply can be
    traced to its message in the database and in the fake ManyChat's records."""

    delay = 0.0

    def render(self, reply: Reply, request: CapturedRequest) -> Reply:
        if reply is not self._default:
            return reply
        messages = (request.json() or {}).get("messages") or [{}]
        last = str(messages[-1].get("content", ""))
        return self.completion({"reply": REPLY_PREFIX + last, "qualified": False}, delay=self.delay)


def pytest_collection_modifyitems(config, items):
    for item in items:
        if "tests/faults/" in str(item.fspath):
            item.add_marker(pytest.mark.faults)


@pytest.fixture(scope="session")
def faults_env():
    url = os.environ.get("DATABASE_URL", "")
    if not url.startswith(("postgres://", "postgresql://")):
        message = "the fault suite runs the production shape: set DATABASE_URL to a PostgreSQL server"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    if not shutil.which("redis-server"):
        pytest.fail("redis-server is not installed")
    workdir = make_workdir()
    model = EchoModel().start()
    manychat = FakeManyChat().start()
    yield {
        "admin_url": url.rsplit("/", 1)[0] + "/postgres",
        "workdir": workdir,
        "model": model,
        "manychat": manychat,
    }
    model.stop()
    manychat.stop()
    if not os.environ.get("FAULTS_KEEP_LOGS"):
        shutil.rmtree(workdir, ignore_errors=True)


@pytest.fixture(scope="session")
def stack(faults_env):
    """The stack on the CI PostgreSQL, in a database of its own (dropped at the end)."""
    name = f"faults_{os.getpid()}"
    database_url = database_create(admin_url=faults_env["admin_url"], name=name)
    redis = Redis(faults_env["workdir"])
    redis.start()
    stack = Stack(
        workdir=faults_env["workdir"],
        database_url=database_url,
        redis=redis,
        model_url=faults_env["model"].base_url,
        manychat_url=faults_env["manychat"].url,
        manychat_token=FakeManyChat.token,
        # Every scenario checks one reply per message: bursts (3 s by default) would answer several at once.
        env={"AGENT_BURST_WINDOW_SECONDS": "0"},
    )
    try:
        stack.start()
        yield stack
    finally:
        stack.stop()
        redis.stop()
        database_drop(admin_url=faults_env["admin_url"], name=name)


@pytest.fixture
def model(faults_env):
    fake = faults_env["model"]
    fake.reset()
    fake.delay = 0.0
    yield fake
    fake.reset()
    fake.delay = 0.0


@pytest.fixture
def manychat(faults_env):
    fake = faults_env["manychat"]
    fake.reset()
    yield fake
    fake.reset()


@dataclass
class Ledger:
    """What one scenario sent and what came back, for the exactly-once check."""

    name: str
    prefix: str
    sent: int = 0
    acknowledged: set[str] = field(default_factory=set)  # texts of messages answered 200
    returned: dict[str, int] = field(default_factory=dict)  # reply text -> times read by a client
    lock: threading.Lock = field(default_factory=threading.Lock)

    def record(self, *, text: str, status: int | None, body: dict | None) -> None:
        with self.lock:
            self.sent += 1
            if status == 200:
                self.acknowledged.add(text)
            for message in ((body or {}).get("content") or {}).get("messages") or []:
                reply = message.get("text", "")
                self.returned[reply] = self.returned.get(reply, 0) + 1


def post_webhook(http, *, ledger: Ledger, body: dict, timeout: float = 10.0):
    """One webhook as ManyChat sends it (its External Request gives up after 10 s)."""
    import httpx

    try:
        response = http.post(
            "/webhooks/manychat/",
            content=json.dumps(body),
            headers={"Content-Type": "application/json", "X-Forwarded-Proto": "https"},
            timeout=timeout,
        )
    except httpx.HTTPError:
        ledger.record(text=str(body.get("text")), status=None, body=None)
        return None
    parsed = (
        response.json() if response.headers.get("content-type", "").startswith("application/json") else None
    )
    ledger.record(text=str(body.get("text")), status=response.status_code, body=parsed)
    return response


def deliveries(*, ledger: Ledger, manychat: FakeManyChat) -> dict[str, int]:
    """Reply text -> times it reached the lead: read from a webhook response, or accepted by sendContent."""
    counts = dict(ledger.returned)
    for text in manychat.sent_texts():
        counts[text] = counts.get(text, 0) + 1
    return counts


def exactly_once(*, stack: Stack, ledger: Ledger, manychat: FakeManyChat) -> dict[str, int]:
    """The invariant, from the database and the fakes' records; prints the scenario's summary line."""
    inbound = stack.inbound(ledger.prefix)
    replies = stack.replies(ledger.prefix)
    delivered = deliveries(ledger=ledger, manychat=manychat)
    stored_texts = {text for text, _ in inbound.values()}
    must_answer = stored_texts | ledger.acknowledged
    answered = {text for text in must_answer if delivered.get(REPLY_PREFIX + text, 0) >= 1}
    twice = {text for text in must_answer if delivered.get(REPLY_PREFIX + text, 0) > 1}
    lost = must_answer - answered
    one_reply_each = all(len(replies.get(pk, [])) == 1 for pk in inbound)
    figures = {
        "sent": ledger.sent,
        "stored": len(inbound),
        "answered": len(answered),
        "twice": len(twice),
        "lost": len(lost),
        "not_stored_but_acknowledged": len(ledger.acknowledged - stored_texts),
        "one_reply_each": one_reply_each,
    }
    line = (
        f"faults {ledger.name}: sent {ledger.sent} / stored {len(inbound)} / answered {len(answered)} / "
        f"delivered twice {len(twice)} / lost {len(lost)}"
    )
    SUMMARY.append(line)
    print(line)
    return figures


def wait_answered(*, stack: Stack, ledger: Ledger, manychat: FakeManyChat, timeout: float) -> None:
    """Wait (for the retry sweep) until every stored or acknowledged message has reached the lead."""
    import time

    limit = time.monotonic() + timeout
    while time.monotonic() < limit:
        inbound = stack.inbound(ledger.prefix)
        delivered = deliveries(ledger=ledger, manychat=manychat)
        texts = {text for text, _ in inbound.values()} | ledger.acknowledged
        if texts and all(delivered.get(REPLY_PREFIX + text, 0) >= 1 for text in texts):
            time.sleep(3)  # and a little longer: a second delivery would show up now
            return
        time.sleep(0.5)


def pytest_terminal_summary(terminalreporter):
    if SUMMARY:
        terminalreporter.section("fault suite: messages sent / stored / answered / delivered twice / lost")
        for line in SUMMARY:
            terminalreporter.write_line(line)
