"""Message bursts on the production shape: gunicorn with two worker processes, PostgreSQL, the project's
default window (AGENT_BURST_WINDOW_SECONDS = 3 s).

Four messages from one subscriber within 2 s, each its own webhook on its own connection, all in flight at
once: one model call whose input holds the four in order, one reply, and a valid Dynamic Block answer for
every webhook. The window lives in the message rows, so it holds whichever worker process took each
webhook; gunicorn's access log (with the worker's pid) shows which one did, and the test requires a burst
that the two processes shared.
"""

import os
import threading
import time

import httpx
import pytest

from tests.faults.conftest import REPLY_PREFIX
from tests.faults.stack import SECRET, Redis, Stack, database_create, database_drop

pytestmark = pytest.mark.faults

BURST = ["hi", "I saw your ad", "how much is the membership?", "and do you have evening classes?"]
ATTEMPTS = 4  # bursts sent until one was shared by the two worker processes (each must hold anyway)


@pytest.fixture(scope="module")
def burst_stack(faults_env):
    name = f"faults_bursts_{os.getpid()}"
    database_url = database_create(admin_url=faults_env["admin_url"], name=name)
    redis = Redis(faults_env["workdir"])
    redis.start()
    access_log = faults_env["workdir"] / f"access-{name}.log"
    stack = Stack(
        workdir=faults_env["workdir"],
        database_url=database_url,
        redis=redis,
        model_url=faults_env["model"].base_url,
        manychat_url=faults_env["manychat"].url,
        manychat_token=faults_env["manychat"].token,
        web_workers=2,
        web_threads=8,
        env={
            "GUNICORN_ACCESS_LOG": str(access_log),
            # The worker's pid and the client's user agent (which names the message) on each line.
            "GUNICORN_CMD_ARGS": "--access-logformat=%(p)s|%(a)s|%(s)s",
        },
    )
    stack.env.pop("AGENT_BURST_WINDOW_SECONDS", None)  # the project's default, not the test run's
    stack.access_log = access_log
    try:
        stack.migrate()
        stack.start_web()
        yield stack
    finally:
        stack.stop()
        redis.stop()
        database_drop(admin_url=faults_env["admin_url"], name=name)


def _worker_pids(stack: Stack) -> set[str]:
    """The web worker processes: the children of gunicorn's master."""
    master = str(stack.processes["web"].pid)
    return {pid for pid in os.listdir("/proc") if pid.isdigit() and _parent(pid) == master}


def _parent(pid: str) -> str:
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[1]
    except OSError:
        return ""


def _send_burst(stack: Stack, subscriber_id: str) -> dict[int, httpx.Response]:
    responses: dict[int, httpx.Response] = {}

    def send(i: int) -> None:
        time.sleep(0.4 * i)  # 0, 0.4, 0.8, 1.2 s: all four within 2 s, each in flight while the next arrives
        with httpx.Client(base_url=stack.url, headers={"X-Webhook-Secret": SECRET}) as http:
            responses[i] = http.post(
                "/webhooks/manychat/",
                json={"subscriber_id": subscriber_id, "text": BURST[i], "channel": "instagram"},
                headers={"User-Agent": f"burst-{subscriber_id}-{i}", "X-Forwarded-Proto": "https"},
                timeout=10,  # ManyChat's External Request gives up after 10 s
            )

    threads = [threading.Thread(target=send, args=(i,)) for i in range(len(BURST))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(20)
    return responses


def _served_by(stack: Stack, subscriber_id: str) -> dict[int, str]:
    """Message index -> pid of the worker process that served its webhook (from the access log)."""
    served: dict[int, str] = {}
    deadline = time.monotonic() + 5
    while len(served) < len(BURST) and time.monotonic() < deadline:
        for line in stack.access_log.read_text().splitlines():
            pid, agent, _status = (line.split("|") + ["", ""])[:3]
            if agent.startswith(f"burst-{subscriber_id}-"):
                served[int(agent.rsplit("-", 1)[1])] = pid.strip("<>")  # gunicorn writes <pid>
        time.sleep(0.2)
    return served


def test_four_messages_on_two_worker_processes_make_one_model_call_and_one_reply(
    burst_stack, model, manychat
):
    stack = burst_stack
    workers = _worker_pids(stack)
    assert len(workers) == 2, f"gunicorn should run two worker processes, found {workers}"
    shared = False
    for attempt in range(ATTEMPTS):
        subscriber_id = f"7731{attempt:04d}"
        model.reset()
        responses = _send_burst(stack, subscriber_id)

        # ManyChat gets a valid Dynamic Block for every webhook: three empty, the last with the one reply.
        assert sorted(responses) == [0, 1, 2, 3]
        assert all(r.status_code == 200 for r in responses.values())
        bodies = [responses[i].json() for i in range(len(BURST))]
        assert all(body["version"] == "v2" for body in bodies)
        texts = [[m.get("text") for m in body["content"]["messages"]] for body in bodies]
        assert texts == [[], [], [], [REPLY_PREFIX + BURST[-1]]], texts

        # One model call, whose input holds the four messages, in order.
        assert model.calls == 1
        lead_turns = [m["content"] for m in model.last_messages() if m["role"] == "user"]
        assert lead_turns[-4:] == BURST

        # In the database: the four messages, answered (three absorbed into the last one's turn), one reply.
        inbound = stack.inbound(subscriber_id)
        assert sorted(text for text, _ in inbound.values()) == sorted(BURST)
        assert {state for _, state in inbound.values()} == {"answered"}
        replies = stack.replies(subscriber_id)
        assert sum(len(found) for found in replies.values()) == 1
        assert manychat.sent_texts() == []  # nothing else went out through sendContent

        served = _served_by(stack, subscriber_id)
        assert set(served.values()) <= workers
        seconds = [round(responses[i].elapsed.total_seconds(), 2) for i in range(len(BURST))]
        print(f"burst {subscriber_id}: worker pids {[served.get(i) for i in range(4)]}, seconds {seconds}")
        if len(set(served.values())) == 2:
            shared = True
            break
    assert shared, "no burst was shared by the two worker processes in any attempt"
