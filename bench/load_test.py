"""Concurrent conversations on loopback against the production shape: today's layout and the chosen one.

    .venv/bin/python bench/load_test.py [--levels 64,256,512,1024] [--layouts today,chosen]
                                        [--duration 30] [--think 5-15] [--model-delay 2]

Starts, all on 127.0.0.1 (tests/faults/stack.py): a PRIVATE PostgreSQL cluster under /tmp on its own port
(initdb/pg_ctl, max_connections=100, never the shared server), its own redis-server, the fake model in its
own process answering every call after --model-delay seconds, the fake ManyChat API, and per layout
gunicorn with config/gunicorn.conf.py (DJANGO_DEBUG=0, the connection budget enforced), a Celery prefork
worker and beat. Layouts (LAYOUTS below): "today", 2 workers x 32 threads as shipped before issue #21, and
"chosen", 2 workers x 256 threads with a pool of 24 connections per worker (the deployment files).

At each level N conversations run for --duration seconds: a conversation (its own subscriber) sends a
message, waits for the answer (in the webhook's body; or, when the turn went the async way, until the fake
ManyChat receives its sendContent), then reads and types for a --think time before the next one, as a lead
does; conversations start spread over the first think time. Latency is measured by the client, from
sending. It prints one line per level and a table: messages, rate, p50/p95/max latency, errors, answers in
the body and through sendContent, and from the database every message stored once and answered exactly once
(one agent reply, returned or sent), none twice, with the load average. Exit status 1 if the chosen layout
misses a level (an error, a message not answered exactly once, p95 >= 9 s).
"""

import argparse
import os
import sys
import time
import uuid
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.bench_webhook import percentile, start_fake_model  # noqa: E402
from tests.faults.stack import (  # noqa: E402
    SECRET,
    PrivatePostgres,
    Redis,
    Stack,
    database_create,
    make_workdir,
)

# --- Concurrent conversations: the curve, today's layout against the chosen one -----------------------------

LAYOUTS = {
    # What config/gunicorn.conf.py shipped before issue #21: 2 workers x 32 threads, each thread holding its
    # PostgreSQL connection for the whole turn (64 turns in flight at most).
    "today": {"web_workers": 2, "web_threads": 32, "env": {"DATABASE_POOL_MAX_SIZE": "32"}},
    # The chosen layout (README, "Performance"): 2 workers x 256 threads; a thread gives its connection back
    # to the pool while the model writes (agent.turn._connection_release), so 512 turns in flight share
    # 2 x 24 connections.
    "chosen": {"web_workers": 2, "web_threads": 256, "env": {"DATABASE_POOL_MAX_SIZE": "24"}},
}


async def _conversation(
    *, http, index: int, prefix: str, until: float, think: tuple[float, float], rng, results: list, manychat
) -> None:
    import asyncio

    subscriber = f"{prefix}{index:05d}"
    await asyncio.sleep(rng.uniform(0, think[1]))  # conversations start spread out, as people do
    n = 0
    while time.monotonic() < until:
        job = {
            "subscriber_id": subscriber,
            "text": f"question {n} from {subscriber}",
            "message_id": f"{subscriber}-{n}",
            "channel": "instagram",
            "first_name": "Load",
        }
        started = time.monotonic()
        try:
            response = await http.post("/webhooks/manychat/", json=job)
            status = str(response.status_code)
            answered = status == "200" and bool(response.json()["content"]["messages"])
        except Exception as exc:  # noqa: BLE001 - every failure is counted and named
            status, answered = type(exc).__name__, False
        elapsed = time.monotonic() - started
        if status == "200" and not answered:
            # Went the async way (out of time): the answer comes through sendContent; wait for it.
            sent_before = manychat.count(subscriber)
            while manychat.count(subscriber) <= sent_before and time.monotonic() - started < 60:
                await asyncio.sleep(0.2)
            elapsed = time.monotonic() - started
        results.append((status, answered, elapsed))
        n += 1
        await asyncio.sleep(rng.uniform(*think))


class _SentCounter:
    """sendContent calls per subscriber, read from the fake ManyChat's records."""

    def __init__(self, fake):
        self.fake = fake

    def count(self, subscriber: str) -> int:
        return sum(1 for sent in self.fake.sent() if str(sent.get("subscriber_id")) == subscriber)


def run_level(*, stack: Stack, conversations: int, args, manychat) -> dict:
    import asyncio
    import random

    prefix = f"9{str(uuid.uuid4().int % 10**6).zfill(6)}"
    results: list[tuple[str, bool, float]] = []
    think = tuple(float(x) for x in args.think.split("-"))
    rng = random.Random(conversations)  # noqa: S311 - arrival jitter, not security

    async def main() -> None:
        limits = httpx.Limits(max_connections=conversations, max_keepalive_connections=conversations)
        async with httpx.AsyncClient(
            base_url=stack.url, timeout=30, limits=limits, headers={"X-Webhook-Secret": SECRET}
        ) as http:
            until = time.monotonic() + args.duration
            await asyncio.gather(
                *(
                    _conversation(
                        http=http,
                        index=i,
                        prefix=prefix,
                        until=until,
                        think=think,
                        rng=rng,
                        results=results,
                        manychat=_SentCounter(manychat),
                    )
                    for i in range(conversations)
                )
            )

    load_before = os.getloadavg()[0]
    wall = time.monotonic()
    asyncio.run(main())
    wall = time.monotonic() - wall
    time.sleep(2)
    inbound = stack.inbound(prefix)
    replies = stack.replies(prefix)
    delivered = {"returned", "sent"}
    answered_once = sum(
        1 for pk in inbound if len(replies.get(pk, [])) == 1 and replies[pk][0][1] in delivered
    )
    twice = sum(1 for pk in inbound if len(replies.get(pk, [])) > 1)
    latencies = [elapsed for _, _, elapsed in results]
    errors = sum(1 for status, _, _ in results if status != "200")
    return {
        "conversations": conversations,
        "messages": len(results),
        "per_second": len(results) / wall,
        "errors": errors,
        "in_body": sum(1 for _, answered, _ in results if answered),
        "deferred": sum(1 for status, answered, _ in results if status == "200" and not answered),
        "stored": len(inbound),
        "answered_once": answered_once,
        "twice": twice,
        "p50": percentile(latencies, 0.50) if latencies else 0.0,
        "p95": percentile(latencies, 0.95) if latencies else 0.0,
        "max": max(latencies) if latencies else 0.0,
        "load": (load_before + os.getloadavg()[0]) / 2,
    }


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--levels", default="64,256,512,1024", help="concurrent conversations per step")
    parser.add_argument("--layouts", default="today,chosen")
    parser.add_argument("--duration", type=float, default=30.0, help="seconds each level sends new messages")
    parser.add_argument(
        "--think", default="5-15", help="seconds a lead reads and types before its next message"
    )
    parser.add_argument("--model-delay", type=float, default=2.0)
    parser.add_argument("--max-connections", type=int, default=100)
    args = parser.parse_args()

    from tests.fakes.fake_manychat import FakeManyChat

    workdir = make_workdir()
    cluster = PrivatePostgres(workdir / "pg", max_connections=args.max_connections)
    cluster.start()
    redis = Redis(workdir)
    redis.start()
    fake_url, fake_delay, fake_calls, fake_process = start_fake_model()
    fake_delay.value = args.model_delay
    manychat = FakeManyChat().start()
    curves: dict[str, list[dict]] = {}
    ok = True
    try:
        for layout in args.layouts.split(","):
            shape = LAYOUTS[layout]
            database_url = database_create(admin_url=cluster.admin_url, name=f"load_{layout}")
            stack = Stack(
                workdir=workdir,
                database_url=database_url,
                redis=redis,
                model_url=fake_url,
                manychat_url=manychat.url,
                manychat_token=manychat.token,
                env={
                    "DATABASE_MAX_CONNECTIONS": str(args.max_connections),
                    "DJANGO_LOG_LEVEL": "ERROR",
                    "AGENT_BURST_WINDOW_SECONDS": "0",  # one reply per message (no bursts here)
                    # No spend cap trips in a load test (agent/budget.py is measured by bench_spend.py).
                    "AGENT_DAILY_TOKEN_CAP": "0",
                    "AGENT_DAILY_USD_CAP": "0",
                    "AGENT_LEAD_DAILY_TOKEN_CAP": "0",
                    "AGENT_LEAD_DAILY_USD_CAP": "0",
                    **shape["env"],
                },
                web_threads=shape["web_threads"],
                web_workers=shape["web_workers"],
                celery_concurrency=2,
            )
            try:
                stack.start()
                curve = curves[layout] = []
                for level in (int(x) for x in args.levels.split(",")):
                    point = run_level(stack=stack, conversations=level, args=args, manychat=manychat)
                    curve.append(point)
                    print(
                        f"   {layout:<7} {level:5d} conversations: {point['messages']:5d} messages "
                        f"({point['per_second']:.1f}/s), p50 {point['p50']:.2f} s, "
                        f"p95 {point['p95']:.2f} s, max {point['max']:.2f} s, errors {point['errors']}, "
                        f"in the body {point['in_body']}, async {point['deferred']}, "
                        f"answered once {point['answered_once']}/{point['stored']}, "
                        f"twice {point['twice']}, load {point['load']:.1f}",
                        flush=True,
                    )
            finally:
                stack.stop()
    finally:
        manychat.stop()
        fake_process.terminate()
        redis.stop()
        cluster.remove()

    print(
        f"== Concurrent conversations, model {args.model_delay:.0f} s, think {args.think} s, "
        f"{args.duration:.0f} s per level, PostgreSQL max_connections={args.max_connections}"
    )
    print(
        f"   {'layout':<8}{'conv.':>6}{'msgs':>7}{'msg/s':>7}{'p50 s':>7}{'p95 s':>7}{'max s':>7}"
        f"{'errors':>8}{'async':>7}{'once':>11}{'twice':>6}{'load':>6}"
    )
    for layout, curve in curves.items():
        for p in curve:
            good = (
                p["errors"] == 0
                and p["twice"] == 0
                and p["answered_once"] == p["stored"] == p["messages"]
                and p["p95"] < 9.0
            )
            if layout == "chosen":
                ok = ok and good
            print(
                f"   {layout:<8}{p['conversations']:>6}{p['messages']:>7}{p['per_second']:>7.1f}"
                f"{p['p50']:>7.2f}{p['p95']:>7.2f}{p['max']:>7.2f}{p['errors']:>8}{p['deferred']:>7}"
                f"{p['answered_once']:>6}/{p['stored']:<4}{p['twice']:>6}{p['load']:>6.1f}"
                f"  {'ok' if good else 'FAIL'}"
            )
    print("== the chosen layout held every level" if ok else "== FAILED: the chosen layout missed a level")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
