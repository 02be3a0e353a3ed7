"""Rehearsal throughput: 30 scenarios × 3 repeats × up to 6 turns on the fake model with a real Celery worker.

    .venv/bin/python bench/bench_rehearsal.py [--scenarios 30] [--repeats 3] [--concurrency 2] [--against]
                                              [--latency 0.0]

Needs PostgreSQL (DATABASE_URL, default postgres://postgres@127.0.0.1:5432/h7_bench, created and migrated
if missing) and Redis for the broker (BENCH_REDIS_URL, default redis://127.0.0.1:6379/7; the queue is
purged first). The model is the local fake OpenAI server playing both sides (tests/fakes/fake_openai.py):
the simulated lead reveals one fact a turn and the agent asks, quotes, and qualifies once it knows the
budget and timeline; a third of the scenarios end qualified on turn 3, the rest run to the lead's goodbye
or the 6-turn limit. --latency adds that many seconds to every model answer (a real model takes ~1 s).

Prints the wall time of the whole run (target: under 300 s), the model calls by kind, the plays per second,
and, as a baseline measured in the same run, the same number of model calls made one after another from
this process with the openai client (no database, no Celery): ratio = run time / that floor.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

DEFAULT_DB = "postgres://postgres@127.0.0.1:5432/h7_bench"
DEFAULT_REDIS = "redis://127.0.0.1:6379/7"
QUALIFYING_FACTS = {"budget": "2k a month", "timeline": "next month"}
LONG_FACTS = {
    "budget": "500 a month",
    "team size": "four people",
    "location": "Lyon",
    "concern": "contract length",
    "experience": "tried a competitor last year",
}


def ensure_database(url: str) -> None:
    import psycopg

    name = url.rsplit("/", 1)[1]
    admin_url = url.rsplit("/", 1)[0] + "/postgres"
    with psycopg.connect(admin_url, autocommit=True) as conn:
        if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone():
            conn.execute(f'CREATE DATABASE "{name}"')


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--scenarios", type=int, default=30)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--concurrency", type=int, default=2, help="worker processes (prefork)")
    parser.add_argument(
        "--against", action="store_true", help="also play the active version (doubles the plays)"
    )
    parser.add_argument("--latency", type=float, default=0.0, help="seconds added to every model answer")
    args = parser.parse_args()

    from tests.fakes.fake_openai import FakeOpenAI

    fake = FakeOpenAI().start()
    fake.play_rehearsal(delay=args.latency)
    database_url = os.environ.get("DATABASE_URL", DEFAULT_DB)
    broker_url = os.environ.get("BENCH_REDIS_URL", DEFAULT_REDIS)
    ensure_database(database_url)
    os.environ.update(
        DJANGO_SETTINGS_MODULE="config.settings",
        DJANGO_DEBUG=os.environ.get("DJANGO_DEBUG", "1"),  # a local tool: the development settings
        DATABASE_URL=database_url,
        CELERY_BROKER_URL=broker_url,
        OPENAI_API_KEY="sk-bench-fake",
        OPENAI_BASE_URL=fake.base_url,
        OPENAI_MAX_RETRIES="0",
        DJANGO_LOG_LEVEL="WARNING",
    )
    import django

    django.setup()
    from django.core.management import call_command
    from django.db import connection
    from tqdm import tqdm

    from agent.rehearsal import selectors, services
    from agent.rehearsal.models import RehearsalRun, Scenario, SharedCheck
    from config.celery import app
    from prompts.models import PromptVersion
    from tests.rehearsal.worker import Worker

    call_command("migrate", verbosity=0)
    RehearsalRun.objects.all().delete()
    Scenario.objects.all().delete()
    SharedCheck.objects.all().delete()
    SharedCheck.objects.create(
        name="Allowed prices", kind="allowed_prices", params={"prices": ["€49", "€99"]}, never=True
    )
    PromptVersion.objects.filter(is_active=True).update(is_active=False)
    top = max(PromptVersion.objects.values_list("version", flat=True), default=0)
    active = PromptVersion.objects.create(
        version=top + 1, content="You are Ava, a sales assistant (bench).", is_active=True
    )
    draft = PromptVersion.objects.create(version=top + 2, content="You are Ava (bench draft), warmer.")
    for number in range(args.scenarios):
        facts = QUALIFYING_FACTS if number % 3 == 0 else LONG_FACTS
        services.scenario_create(
            data={
                "title": f"Bench scenario {number:02d}",
                "persona": f"Lead number {number}, a small business owner.",
                "opening_messages": [f"Hi, how much is it? (lead {number})"],
                "channel": "instagram",
                "facts": facts,
                "max_turns": 6,
                "checks": [
                    {"kind": "budget_before_price"},
                    {"kind": "length_limit"},
                    {"kind": "max_questions"},
                ],
                "tags": ["bench"],
            }
        )
    with app.connection_for_write() as conn:
        conn.default_channel.queue_purge("celery")

    # Baseline, same process and same fake: sequential model calls with the openai client, nothing else.
    import openai

    client = openai.OpenAI(api_key="sk-bench-fake", base_url=fake.base_url, max_retries=0)
    probe = 100
    started = time.perf_counter()
    for index in range(probe):
        client.chat.completions.create(
            model="fake-gpt",
            messages=[
                {"role": "system", "content": "You are Ava."},
                {"role": "user", "content": f"Hi {index}"},
            ],
        )
    per_call = (time.perf_counter() - started) / probe
    fake.reset()
    fake.play_rehearsal(delay=args.latency)

    db = connection.settings_dict
    worker_db = f"postgres://{db['USER']}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"
    worker = Worker(
        database_url=worker_db, broker_url=broker_url, openai_url=fake.base_url, concurrency=args.concurrency
    ).start()
    time.sleep(4.0)  # the worker's processes start and connect before the clock starts
    try:
        started = time.perf_counter()
        run = services.rehearsal_run_create(
            version=draft, against=active if args.against else None, repeats=args.repeats
        )  # queued on commit
        with tqdm(total=run.total, desc=f"rehearsal #{run.pk}", unit="play") as bar:
            while True:
                run.refresh_from_db(fields=["status"])
                bar.update(selectors.rehearsal_run_progress(run=run).finished - bar.n)
                if run.is_finished:
                    break
                time.sleep(0.2)
        elapsed = time.perf_counter() - started
    finally:
        worker.stop()
        fake.stop()

    report = selectors.rehearsal_report(run=run)
    usage = selectors.rehearsal_usage(run=run)
    calls = sum(value or 0 for value in usage.values())
    turns = sorted(run.plays.values_list("turns", flat=True))
    floor = calls * per_call
    versions = " × 2 versions" if args.against else ""
    kinds = f"agent {usage['agent_calls']}, lead {usage['lead_calls']}, judge {usage['judge_calls']}"
    shape = f"{args.scenarios} scenarios × {args.repeats} repeats{versions}"
    side = report.draft
    lines = [
        f"rehearsal #{run.pk}: {run.status}, {run.total} plays ({shape})",
        f"  worker concurrency {args.concurrency}, model latency {args.latency}s",
        f"  wall time           {elapsed:.1f} s   (target < 300 s: {'met' if elapsed < 300 else 'MISSED'})",
        f"  model calls         {calls} ({kinds}); the fake server answered {fake.calls}",
        f"  turns per play      min {turns[0]}, median {turns[len(turns) // 2]}, max {turns[-1]}",
        f"  throughput          {run.total / elapsed:.1f} plays/s, {calls / elapsed:.1f} model calls/s",
        f"  score               {side.score:.0%} over {side.plays} plays, {side.tokens} tokens",
        f"  baseline            {per_call * 1000:.2f} ms a bare sequential call: {floor:.1f} s for {calls}",
        f"  ratio               {elapsed / floor:.2f} (run time / sequential model-call floor)",
    ]
    print("\n" + "\n".join(lines))


if __name__ == "__main__":
    main()
