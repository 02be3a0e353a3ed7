"""The ManyChat webhook's cost and capacity, on the recommended server setup (config/gunicorn.conf.py).

    .venv/bin/python bench/bench_webhook.py [--requests 400] [--concurrency 40,60,80] [--slow 2.0]

Needs PostgreSQL (DATABASE_URL, default postgres://postgres@127.0.0.1:5432/agent_bench, created and
migrated if missing) and Redis for the Celery broker (BENCH_REDIS_URL, default redis://127.0.0.1:6379/1;
the tasks a reply enqueues are dropped at the end). The model is the local fake OpenAI server.

1. Server time per request, one interleaved run (bare, floor, webhook in turn each round, the order
   reversed every other round), sequential over keep-alive HTTP, a zero-latency fake model:
   POST /webhooks/manychat/ (a returning lead, a new message each time) against the durable floor
   (/bench/floor/ in bench/webhook_urls.py: secret, parse, insert + commit, the model call, insert + commit)
   and a bare Django JSON view, all on the same gunicorn, middleware and settings (the cache in Redis as in
   production, so the release stamp's GET is counted). Prints the client round trip and the server time
   gunicorn logs (%(D)s) per target, the ratio webhook / floor (target <= 1.5) and webhook / bare (for
   continuity with older figures), the SQL statements per request (counted in-process with the same
   settings; target <= 6 for a returning lead), and what one durable commit costs on this disk.
2. Capacity: N simultaneous webhooks while every model call takes --slow seconds; a request counts as
   good when it gets 200 with the model's answer inside the 8 s deadline. Target: >= 40 with no errors.
"""

from __future__ import annotations

import argparse
import os
import socket
import statistics
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

DEFAULT_DB = "postgres://postgres@127.0.0.1:5432/agent_bench"
SECRET = "bench-webhook-secret"
WINDOW_SECONDS = 10.0  # ManyChat drops a request that takes longer


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def ensure_database(url: str) -> None:
    import psycopg

    name = url.rsplit("/", 1)[1]
    admin_url = url.rsplit("/", 1)[0] + "/postgres"
    with psycopg.connect(admin_url, autocommit=True) as conn:
        if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone():
            conn.execute(f'CREATE DATABASE "{name}"')


def start_fake_model() -> tuple[str, object, object, object]:
    """The fake OpenAI server in its own process (its threads must not share the client's GIL).

    Returns (base_url, delay, calls, process); `delay` (seconds) and `calls` are shared values.
    """
    import multiprocessing

    from tests.fakes.fake_openai import FakeOpenAI

    context = multiprocessing.get_context("fork")
    delay, calls, port = context.Value("d", 0.0), context.Value("i", 0), context.Value("i", 0)

    class SharedFake(FakeOpenAI):
        def render(self, reply, request):
            with calls.get_lock():
                calls.value += 1
            return self.completion(
                {"reply": "Memberships start at $30 a month. Want a free trial pass?", "qualified": False},
                delay=delay.value,
            )

    def serve() -> None:
        fake = SharedFake().start()
        port.value = int(fake.url.rsplit(":", 1)[1])
        threading.Event().wait()

    process = context.Process(target=serve, daemon=True)
    process.start()
    while not port.value:
        time.sleep(0.05)
    return f"http://127.0.0.1:{port.value}/v1", delay, calls, process


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


TRANSACTION_CONTROL = ("BEGIN", "COMMIT", "ROLLBACK", "SAVEPOINT", "RELEASE")


def statements(captured) -> int:
    """SQL statements, not counting the transaction control lines Django also logs."""
    return sum(
        1 for q in captured.captured_queries if not q["sql"].lstrip().upper().startswith(TRANSACTION_CONTROL)
    )


def body(subscriber: str, text: str) -> dict:
    return {"subscriber_id": subscriber, "text": text, "channel": "instagram", "first_name": "Bench"}


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=400, help="timed requests per endpoint")
    parser.add_argument("--concurrency", default="40,60,80", help="simultaneous slow webhooks to try")
    parser.add_argument("--slow", type=float, default=2.0, help="model latency for the capacity test (s)")
    args = parser.parse_args()

    db_url = os.environ.get("DATABASE_URL", DEFAULT_DB)
    redis_url = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/1")
    ensure_database(db_url)

    fake_url, fake_delay, fake_calls, fake_process = start_fake_model()
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "bench.webhook_settings",
        "DATABASE_URL": db_url,
        "DJANGO_DEBUG": "0",
        "DJANGO_SECRET_KEY": "bench-" + "x" * 60,
        "DJANGO_SECURE_SSL_REDIRECT": "0",
        "DJANGO_ALLOWED_HOSTS": "127.0.0.1,localhost,testserver",
        "DJANGO_LOG_LEVEL": "WARNING",
        "MANYCHAT_WEBHOOK_SECRET": SECRET,
        "OPENAI_API_KEY": "sk-bench",
        "OPENAI_BASE_URL": fake_url,
        "CELERY_BROKER_URL": redis_url,
        "AGENT_ASYNC_MODE": "0",
        "AGENT_HOLDING_TEXT": "",
        "REDIS_URL": os.environ.get("BENCH_CACHE_URL", redis_url),  # the shared cache, as in production
        # The webhook's own cost: no burst window (3 s by default) holding each request before its turn.
        "AGENT_BURST_WINDOW_SECONDS": "0",
        # Persistent connections, as recommended with gthread: one per busy thread, reused.
        "DATABASE_CONN_MAX_AGE": os.environ.get("DATABASE_CONN_MAX_AGE", "60"),
    }
    os.environ.update(env)
    subprocess.run(
        [sys.executable, "manage.py", "migrate", "--noinput", "-v", "0"], cwd=ROOT, env=env, check=True
    )

    import django

    django.setup()
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext

    from prompts.models import PromptVersion

    if not PromptVersion.objects.filter(is_active=True).exists():
        next_version = (
            PromptVersion.objects.order_by("-version").values_list("version", flat=True).first() or 0
        ) + 1
        PromptVersion.objects.create(
            version=next_version, content="You are a helpful sales assistant.", is_active=True
        )
    run = str(uuid.uuid4().int % 10**8)  # digits: ManyChat contact ids are numeric (agent/payloads.py)

    # --- Queries per webhook, in-process with the same settings ---
    client = Client(HTTP_X_WEBHOOK_SECRET=SECRET)
    subscriber = str(uuid.uuid4().int % 10**12)  # ManyChat contact ids are digits
    client.post("/webhooks/manychat/", body(subscriber, "hello"), content_type="application/json")
    query_counts: list[int] = []
    control_counts: list[int] = []
    for n in range(20):
        with CaptureQueriesContext(connection) as captured:
            response = client.post(
                "/webhooks/manychat/", body(subscriber, f"question {n}"), content_type="application/json"
            )
        assert response.status_code == 200 and response.json()["content"]["messages"], response.content
        query_counts.append(statements(captured))
        control_counts.append(len(captured.captured_queries) - statements(captured))
    with CaptureQueriesContext(connection) as captured:
        client.post("/webhooks/manychat/", body(f"1{run}", "first contact"), content_type="application/json")
    new_lead_queries = statements(captured)
    floor_counts: list[int] = []
    for n in range(5):
        with CaptureQueriesContext(connection) as captured:
            response = client.post(
                "/bench/floor/", body(subscriber, f"floor {n}"), content_type="application/json"
            )
        assert response.status_code == 200 and response.json()["content"]["messages"], response.content
        floor_counts.append(statements(captured))

    # Context for the ratio: what one durable commit costs on this disk (the webhook makes two: the
    # lead's message before the model call, the reply after it; the bare view makes none).
    from leads.models import Activity

    commit_times = []
    for _ in range(30):
        started = time.perf_counter()
        Activity.objects.create(verb="bench.commit_probe")
        commit_times.append(time.perf_counter() - started)
    Activity.objects.filter(verb="bench.commit_probe").delete()
    connection.close()

    # --- Start gunicorn with the recommended configuration ---
    port = free_port()
    access_log = Path(tempfile.mkdtemp(prefix="bench-webhook-")) / "access.log"
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
            "--access-logfile",
            str(access_log),
            "--access-logformat",
            "%(U)s|%(q)s|%(D)s",  # path, query, server time in microseconds
            "config.wsgi",
        ],
        cwd=ROOT,
        env=env,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                httpx.post(f"{base}/bench/bare/", timeout=1)
                break
            except httpx.HTTPError:
                if time.monotonic() > deadline or server.poll() is not None:
                    raise SystemExit("gunicorn did not start") from None
                time.sleep(0.2)

        # --- 1. Server time per request, one interleaved run ----------------------------------------------
        headers = {"X-Webhook-Secret": SECRET}
        leads = [f"2{run}{i:03d}" for i in range(20)]
        targets = {"bare": "/bench/bare/", "floor": "/bench/floor/", "webhook": "/webhooks/manychat/"}
        client_times: dict[str, list[float]] = {name: [] for name in targets}
        with httpx.Client(base_url=base, headers=headers, timeout=30) as http:
            for i, lead in enumerate(leads * 2):  # warm-up: creates the leads, warms both workers
                for url in reversed(targets.values()):  # the webhook first: it creates the lead
                    http.post(url, json=body(lead, f"warm {i} {url}"))
            for i in range(args.requests):
                order = list(targets.items()) if i % 2 == 0 else list(reversed(targets.items()))
                for name, url in order:
                    started = time.perf_counter()
                    response = http.post(f"{url}?timed=1", json=body(leads[i % len(leads)], f"{name} {i}"))
                    client_times[name].append(time.perf_counter() - started)
                    assert response.status_code == 200, response.text
                    assert name == "bare" or response.json()["content"]["messages"], response.text
        load = os.getloadavg()
        model_calls = fake_calls.value
        paths = {url: name for name, url in targets.items()}
        server_times: dict[str, list[float]] = {name: [] for name in targets}
        time.sleep(0.5)  # let gunicorn flush its access log
        for line in access_log.read_text().splitlines():
            path, query, micros = line.split("|")
            if query == "timed=1" and path in paths:
                server_times[paths[path]].append(int(micros) / 1e6)
        median = {name: statistics.median(times) for name, times in server_times.items()}
        client_median = {name: statistics.median(times) for name, times in client_times.items()}

        print(
            "== Webhook vs its durable floor and a bare view: one interleaved run (gunicorn "
            "config/gunicorn.conf.py, PostgreSQL, Redis cache, zero-latency fake model)"
        )
        print(f"   rounds                       {args.requests} (each: bare, floor, webhook; order reversed)")
        print(f"   load average                 {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}")
        print(f"   {'':24}{'server median':>14}{'server p95':>12}{'client median':>15}{'client p95':>12}")
        for name in targets:
            print(
                f"   {name:<24}{median[name] * 1000:11.2f} ms"
                f"{percentile(server_times[name], 0.95) * 1000:9.2f} ms"
                f"{client_median[name] * 1000:12.2f} ms{percentile(client_times[name], 0.95) * 1000:9.2f} ms"
            )
        print(
            f"   ratio webhook / floor        {median['webhook'] / median['floor']:.2f} server time, "
            f"{client_median['webhook'] / client_median['floor']:.2f} round trip   (target <= 1.5)"
        )
        print(
            f"   ratio webhook / bare         {median['webhook'] / median['bare']:.2f} server time, "
            f"{client_median['webhook'] / client_median['bare']:.2f} round trip   (continuity)"
        )
        print(f"   ratio floor / bare           {median['floor'] / median['bare']:.2f} server time")
        print(
            f"   SQL statements, webhook      {statistics.median(query_counts):.0f} returning lead "
            f"(min {min(query_counts)}, max {max(query_counts)}; target <= 6) "
            f"+ {statistics.median(control_counts):.0f} BEGIN/COMMIT lines"
        )
        print(f"{'':32}{new_lead_queries} for a new lead")
        print(f"   SQL statements, floor        {statistics.median(floor_counts):.0f}")
        print(f"   model calls                  {model_calls}")
        commit_median = statistics.median(commit_times) * 1000
        print(
            f"   one INSERT + COMMIT          median {commit_median:.2f} ms "
            "(fdatasync; 2 per webhook and per floor)"
        )

        # --- 2. Capacity with a slow model ------------------------------------------------------------------
        fake_delay.value = args.slow
        print(f"== Simultaneous webhooks with a {args.slow:.1f} s model (config/gunicorn.conf.py)")
        best = 0
        for level in [int(x) for x in args.concurrency.split(",") if x.strip()]:
            results: list[tuple[int, bool, float]] = []
            lock = threading.Lock()
            barrier = threading.Barrier(level)

            shared = httpx.Client(limits=httpx.Limits(max_connections=level, max_keepalive_connections=level))

            def fire(
                index: int, level: int = level, results=results, lock=lock, barrier=barrier, shared=shared
            ) -> None:
                barrier.wait()
                started = time.perf_counter()
                try:
                    response = shared.post(
                        f"{base}/webhooks/manychat/",
                        json=body(f"3{run}{level:03d}{index:04d}", "hi, prices?"),
                        headers=headers,
                        timeout=15,
                    )
                    answered = (
                        response.status_code == 200
                        and bool(response.json()["content"]["messages"])
                        and time.perf_counter() - started <= WINDOW_SECONDS
                    )
                    outcome = (response.status_code, answered, time.perf_counter() - started)
                except httpx.HTTPError:
                    outcome = (0, False, time.perf_counter() - started)
                with lock:
                    results.append(outcome)

            threads = [threading.Thread(target=fire, args=(i,)) for i in range(level)]
            wall = time.perf_counter()
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
            wall = time.perf_counter() - wall
            shared.close()
            good = sum(1 for status, answered, _ in results if status == 200 and answered)
            errors = sum(1 for status, _, _ in results if status != 200)
            latencies = [elapsed for _, _, elapsed in results]
            print(
                f"   {level:3d} at once: {good:3d} answered within 10 s, {errors} errors, "
                f"latency median {statistics.median(latencies):.2f} s, max {max(latencies):.2f} s, "
                f"wall {wall:.2f} s"
            )
            if good == level:
                best = max(best, level)
        print(
            f"   held without errors          {best} simultaneous {args.slow:.0f} s model calls "
            "(target >= 40)"
        )
    finally:
        server.terminate()
        server.wait(15)
        fake_process.terminate()
        import redis

        redis.Redis.from_url(redis_url).delete("celery")  # the record_reply tasks nobody consumes here
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
