"""Bounded load test on loopback against the production shape, with PostgreSQL at max_connections=100.

    .venv/bin/python bench/load_test.py [--requests 600] [--concurrency 60] [--model-delays 1,3]

Starts, all on 127.0.0.1 (tests/faults/stack.py): a PRIVATE PostgreSQL cluster under /tmp on its own port
(initdb/pg_ctl, max_connections=100, never the shared server), its own redis-server, the fake model in its
own process answering every call after the model delay, gunicorn with config/gunicorn.conf.py
(DJANGO_DEBUG=0, the connection budget enforced), a Celery prefork worker and beat. For each model delay,
--concurrency clients send --requests webhooks (3 messages per subscriber, each with its own message_id)
plus --duplicates repeated deliveries, and it prints throughput, p50/p95/p99/max latency, errors, and from
the database: stored exactly once, one reply each, lost (acknowledged but not stored or not answered),
duplicates (a message stored twice or a reply read twice), and the peak PostgreSQL connections.
Exit status 1 if any run has an error, a lost message, a duplicate or p99 >= 10 s.
"""

import argparse
import sys
import threading
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


def _peak_connections(stack: Stack, stop: threading.Event, peak: list[int]) -> None:
    while not stop.wait(0.5):
        try:
            count = stack.query("SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'client backend'")
            peak[0] = max(peak[0], count[0][0])
        except Exception:  # noqa: BLE001, S110 - a sample missed under load is fine
            pass


def run(*, stack: Stack, delay: float, fake_delay, fake_calls, args) -> bool:
    fake_delay.value = delay
    calls_before = fake_calls.value
    run_id = str(uuid.uuid4().int % 10**8).zfill(8)
    prefix = f"8{run_id}"
    jobs = [
        {
            "subscriber_id": f"{prefix}{i // 3:05d}",
            "text": f"question {i} at {run_id}",
            "message_id": f"{run_id}-{i}",
            "channel": "instagram",
            "first_name": "Load",
        }
        for i in range(args.requests)
    ]
    jobs += [dict(jobs[(i * 7) % len(jobs)]) for i in range(args.duplicates)]
    latencies: list[float] = []
    errors: dict[str, int] = {}
    acknowledged: set[str] = set()
    lock = threading.Lock()
    cursor = iter(range(len(jobs)))

    def client() -> None:
        with httpx.Client(base_url=stack.url, timeout=10, headers={"X-Webhook-Secret": SECRET}) as http:
            while True:
                with lock:
                    index = next(cursor, None)
                if index is None:
                    return
                job = jobs[index]
                started = time.perf_counter()
                try:
                    response = http.post("/webhooks/manychat/", json=job)
                    status = str(response.status_code)
                    response.json()
                except (httpx.HTTPError, ValueError) as exc:
                    status = type(exc).__name__
                elapsed = time.perf_counter() - started
                with lock:
                    latencies.append(elapsed)
                    if status == "200":
                        acknowledged.add(job["text"])
                    else:
                        errors[status] = errors.get(status, 0) + 1

    stop, peak = threading.Event(), [0]
    sampler = threading.Thread(target=_peak_connections, args=(stack, stop, peak), daemon=True)
    sampler.start()
    started = time.perf_counter()
    threads = [threading.Thread(target=client) for _ in range(args.concurrency)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    wall = time.perf_counter() - started
    stop.set()

    inbound = stack.inbound(prefix)
    replies = stack.replies(prefix)
    texts = [text for text, _ in inbound.values()]
    stored_twice = len(texts) - len(set(texts))
    one_reply_each = all(len(replies.get(pk, [])) == 1 for pk in inbound)
    # Duplicates: a message stored twice, or answered twice (the unique reply index makes that impossible).
    twice = sum(1 for pk in inbound if len(replies.get(pk, [])) > 1)
    lost = len(acknowledged - set(texts)) + sum(1 for pk in inbound if not replies.get(pk))
    p99 = percentile(latencies, 0.99)
    print(
        f"== {len(jobs)} webhooks ({args.duplicates} repeated deliveries), {args.concurrency} clients, "
        f"model {delay:.0f} s, PostgreSQL max_connections={args.max_connections}"
    )
    print(f"   throughput      {len(jobs) / wall:8.1f} requests/s  ({wall:.1f} s)")
    for name, q in (("p50", 0.50), ("p95", 0.95), ("p99", 0.99)):
        print(f"   latency {name}     {percentile(latencies, q) * 1000:8.0f} ms")
    print(f"   latency max     {max(latencies) * 1000:8.0f} ms")
    print(f"   errors          {sum(errors.values()):8d}  {errors or ''}")
    print(f"   model calls     {fake_calls.value - calls_before:8d}")
    print(f"   stored          {len(inbound):8d}  of {len(acknowledged)} acknowledged distinct messages")
    print(f"   one reply each  {'yes' if one_reply_each else 'NO':>8}")
    print(f"   lost            {lost:8d}")
    print(f"   duplicates      {stored_twice + twice:8d}")
    print(f"   peak PostgreSQL connections {peak[0]} (budget: config/gunicorn.conf.py)")
    return not errors and lost == 0 and stored_twice + twice == 0 and one_reply_each and p99 < 10


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=600)
    parser.add_argument("--concurrency", type=int, default=60)
    parser.add_argument("--duplicates", type=int, default=30)
    parser.add_argument("--model-delays", default="1,3")
    parser.add_argument("--max-connections", type=int, default=100)
    args = parser.parse_args()

    workdir = make_workdir()
    cluster = PrivatePostgres(workdir / "pg", max_connections=args.max_connections)
    cluster.start()
    redis = Redis(workdir)
    redis.start()
    fake_url, fake_delay, fake_calls, fake_process = start_fake_model()
    database_url = database_create(admin_url=cluster.admin_url, name="load_test")
    stack = Stack(
        workdir=workdir,
        database_url=database_url,
        redis=redis,
        model_url=fake_url,
        manychat_url="http://127.0.0.1:9",  # sync mode: nothing is sent through the API
        manychat_token="",
        # One reply per message is what it checks: the burst window (3 s by default) would merge the three
        # messages of a subscriber into one turn (bursts are proven by tests/faults/test_bursts.py).
        env={
            "DATABASE_MAX_CONNECTIONS": str(args.max_connections),
            "DJANGO_LOG_LEVEL": "ERROR",
            "AGENT_BURST_WINDOW_SECONDS": "0",
        },
        web_threads=32,
        web_workers=2,
        celery_concurrency=2,
    )
    ok = True
    try:
        stack.start()
        for delay in (float(value) for value in args.model_delays.split(",")):
            ok = run(stack=stack, delay=delay, fake_delay=fake_delay, fake_calls=fake_calls, args=args) and ok
    finally:
        stack.stop()
        fake_process.terminate()
        redis.stop()
        cluster.remove()
    print("== all checks passed" if ok else "== FAILED")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
