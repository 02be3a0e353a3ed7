"""Bounded load test on loopback against the production server setup.

    .venv/bin/python bench/load_test.py [--requests 600] [--concurrency 60] [--model-delay 1.0]

Starts, all on 127.0.0.1: its own redis-server on a free port, the fake OpenAI model in its own process
answering every call after --model-delay seconds, gunicorn with config/gunicorn.conf.py (DJANGO_DEBUG=0)
and a Celery worker (prefork, the performance tasks each reply schedules) against that Redis. Then
--concurrency clients send --requests webhooks (a few messages per subscriber, each with its own
message_id, plus --duplicates repeated deliveries) and it prints throughput, p50/p95/p99 latency and
errors. Afterwards it checks the database: every acknowledged message stored exactly once with exactly one
reply, and the worker credited every reply to the active prompt version. Exit status 1 if a check fails.

PostgreSQL: DATABASE_URL (default postgres://postgres@127.0.0.1:5432/agent_loadtest, created if missing).
"""

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.bench_webhook import ensure_database, free_port, percentile, start_fake_model  # noqa: E402

DEFAULT_DB = "postgres://postgres@127.0.0.1:5432/agent_loadtest"
SECRET = "load-test-webhook-secret"


def wait_for(check, timeout: float, what: str) -> None:
    limit = time.monotonic() + timeout
    while time.monotonic() < limit:
        try:
            if check():
                return
        except Exception:  # noqa: BLE001 - not up yet
            time.sleep(0.2)
            continue
        time.sleep(0.2)
    raise SystemExit(f"timed out waiting for {what}")


def start_redis() -> tuple[str, subprocess.Popen, str]:
    port = free_port()
    workdir = tempfile.mkdtemp(prefix="load-redis-")
    process = subprocess.Popen(
        [
            "redis-server",
            "--port",
            str(port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            workdir,
        ],
        stdout=subprocess.DEVNULL,
    )
    import redis

    wait_for(lambda: redis.Redis(port=port).ping(), 10, "redis-server")
    return f"redis://127.0.0.1:{port}/0", process, workdir


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=600)
    parser.add_argument("--concurrency", type=int, default=60)
    parser.add_argument("--per-subscriber", type=int, default=3, help="messages per subscriber")
    parser.add_argument("--duplicates", type=int, default=30, help="repeated deliveries of sent messages")
    parser.add_argument("--model-delay", type=float, default=1.0)
    args = parser.parse_args()

    db_url = os.environ.get("DATABASE_URL", DEFAULT_DB)
    ensure_database(db_url)
    redis_url, redis_process, redis_dir = start_redis()
    fake_url, fake_delay, fake_calls, fake_process = start_fake_model()
    fake_delay.value = args.model_delay
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "config.settings",
        "DATABASE_URL": db_url,
        "DATABASE_CONN_MAX_AGE": "60",
        "DJANGO_DEBUG": "0",
        "DJANGO_SECRET_KEY": "load-test-" + "k3Jq9vTb2Lm8xR4s" * 4,
        "DJANGO_SECURE_SSL_REDIRECT": "0",
        "DJANGO_ALLOWED_HOSTS": "127.0.0.1,localhost",
        "DJANGO_LOG_LEVEL": "WARNING",
        "MANYCHAT_WEBHOOK_SECRET": SECRET,
        "MANYCHAT_API_TOKEN": "",
        "OPENAI_API_KEY": "sk-load-test",
        "OPENAI_BASE_URL": fake_url,
        "CELERY_BROKER_URL": redis_url,
        "REDIS_URL": redis_url.rsplit("/", 1)[0] + "/1",  # the cache (rate limits)
        "AGENT_ASYNC_MODE": "0",
        "AGENT_HOLDING_TEXT": "",
    }
    os.environ.update(env)
    subprocess.run(
        [sys.executable, "manage.py", "migrate", "--noinput", "-v", "0"], cwd=ROOT, env=env, check=True
    )

    import django

    django.setup()
    from django.db import connection
    from django.db.models import Count

    from leads.models import Message, MessageRole
    from prompts.models import PromptVersion

    active = PromptVersion.objects.filter(is_active=True).first()
    if active is None:
        number = (
            PromptVersion.objects.order_by("-version").values_list("version", flat=True).first() or 0
        ) + 1
        active = PromptVersion.objects.create(
            version=number, content="You are a helpful sales assistant.", is_active=True
        )
    replies_before = active.total_replies
    connection.close()

    port = free_port()
    logs = Path(tempfile.mkdtemp(prefix="load-test-"))
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "gunicorn",
            "-c",
            "config/gunicorn.conf.py",
            "--bind",
            f"127.0.0.1:{port}",
            "--log-level",
            "warning",
            "config.wsgi",
        ],
        cwd=ROOT,
        env=env,
        stderr=(logs / "gunicorn.log").open("w"),
    )
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
            "2",
            "--loglevel",
            "WARNING",
            "--without-gossip",
            "--without-mingle",
            "--without-heartbeat",
        ],
        cwd=ROOT,
        env=env,
        stderr=(logs / "worker.log").open("w"),
    )
    base = f"http://127.0.0.1:{port}"
    ok = True
    try:
        wait_for(
            lambda: httpx.post(f"{base}/webhooks/manychat/", timeout=2).status_code == 401, 30, "gunicorn"
        )
        run = str(uuid.uuid4().int % 10**8)  # digits: ManyChat contact ids are numeric
        jobs = []
        for i in range(args.requests):
            subscriber = f"9{run}{i // args.per_subscriber:06d}"
            jobs.append(
                {
                    "subscriber_id": subscriber,
                    "text": f"question {i}",
                    "message_id": f"{run}-{i}",
                    "channel": "instagram",
                    "first_name": "Load",
                }
            )
        jobs += [dict(jobs[(i * 7) % len(jobs)]) for i in range(args.duplicates)]
        latencies: list[float] = []
        errors: dict[str, int] = {}
        acknowledged: set[str] = set()
        lock = threading.Lock()
        cursor = iter(range(len(jobs)))

        def client() -> None:
            with httpx.Client(base_url=base, timeout=15, headers={"X-Webhook-Secret": SECRET}) as http:
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
                    except httpx.HTTPError as exc:
                        status = type(exc).__name__
                    elapsed = time.perf_counter() - started
                    with lock:
                        latencies.append(elapsed)
                        if status == "200":
                            acknowledged.add(job["message_id"])
                        else:
                            errors[status] = errors.get(status, 0) + 1

        started = time.perf_counter()
        threads = [threading.Thread(target=client) for _ in range(args.concurrency)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        wall = time.perf_counter() - started

        print(
            f"== Load test: {len(jobs)} webhooks ({args.duplicates} repeated deliveries), "
            f"{args.concurrency} concurrent clients, model {args.model_delay:.1f} s"
        )
        print("   gunicorn config/gunicorn.conf.py (gthread), Celery prefork x2, Redis, PostgreSQL, loopback")
        print(f"   throughput      {len(jobs) / wall:8.1f} requests/s  ({wall:.1f} s)")
        print(f"   latency p50     {percentile(latencies, 0.50) * 1000:8.0f} ms")
        print(f"   latency p95     {percentile(latencies, 0.95) * 1000:8.0f} ms")
        print(f"   latency p99     {percentile(latencies, 0.99) * 1000:8.0f} ms")
        print(f"   latency max     {max(latencies) * 1000:8.0f} ms")
        print(f"   errors          {sum(errors.values()):8d}  {errors or ''}")
        print(f"   model calls     {fake_calls.value:8d}")

        # --- Afterwards: exactly once ---
        inbound = Message.objects.filter(
            role=MessageRole.LEAD, conversation__lead__manychat_subscriber_id__startswith=f"9{run}"
        )
        stored = inbound.count()
        per_text = inbound.values("text").annotate(n=Count("id")).filter(n__gt=1).count()
        replies = inbound.annotate(n=Count("replies", filter=_agent_reply())).values_list("n", flat=True)
        reply_counts: dict[int, int] = {}
        for n in replies:
            reply_counts[n] = reply_counts.get(n, 0) + 1
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:  # the worker credits each reply to the active version
            active.refresh_from_db()
            if active.total_replies - replies_before >= args.requests:
                break
            time.sleep(0.5)
        credited = active.total_replies - replies_before
        checks = {
            "every acknowledged message stored": stored == len(acknowledged),
            "stored exactly once (no duplicates)": per_text == 0 and stored <= args.requests,
            "exactly one reply per message": reply_counts == {1: stored},
            "one model call per message": fake_calls.value == stored,
            "worker credited every reply": credited == stored,
        }
        print(f"   stored          {stored:8d}  of {len(acknowledged)} acknowledged distinct messages")
        print(f"   replies         {reply_counts}")
        print(f"   credited        {credited:8d}  replies counted by the Celery worker")
        for name, passed in checks.items():
            print(f"   [{'ok' if passed else 'FAIL'}] {name}")
            ok = ok and passed
        ok = ok and not errors
    finally:
        for process in (server, worker):
            process.terminate()
        for process in (server, worker):
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
        fake_process.terminate()
        redis_process.terminate()
        redis_process.wait(timeout=10)
        shutil.rmtree(redis_dir, ignore_errors=True)
    return 0 if ok else 1


def _agent_reply():
    from django.db.models import Q

    return Q(replies__role="agent")


if __name__ == "__main__":
    raise SystemExit(main())
