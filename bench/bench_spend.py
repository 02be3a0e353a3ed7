"""Spend reads on the generated dataset: the caps' daily seed, the Spend page's month, a lead's cost, and what
the cap check adds to a turn.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/bench_h6 [REDIS_URL=redis://127.0.0.1:6379/6] \\
        .venv/bin/python bench/bench_spend.py [--runs 7]

Run it on a copy of `bench_data` (migrated). Each figure is the median of `--runs`, alternating with its
baseline in the same run so both see the same cache and load:

* the day's agent spend (seeds the cap counters) and the month by day and model (the Spend page), with the
  partial index agent/migrations/0008 adds, against the same queries with that index dropped inside a
  transaction that is rolled back;
* a lead's cost (agent.spend.selectors.lead_spend, one grouped query) against loading the lead's replies and
  summing them in Python;
* a reservation and its settlement on the cache counters (the per-turn cost of the caps: two round trips to
  Redis) against one plain cache get.
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import sys
import time
from collections.abc import Callable
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
os.environ.setdefault("DJANGO_DEBUG", "1")

import django  # noqa: E402

django.setup()

from django.conf import settings  # noqa: E402
from django.core.cache import cache  # noqa: E402
from django.db import connection, transaction  # noqa: E402
from django.utils import timezone  # noqa: E402

from agent import budget  # noqa: E402
from agent.spend import selectors  # noqa: E402
from leads.models import Lead, Message, MessageRole  # noqa: E402

INDEX = "message_agent_time_cost_idx"


def _median_ms(fn: Callable[[], object], runs: int) -> float:
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        fn()
        times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times)


def _without_index(fn: Callable[[], object]) -> Callable[[], object]:
    def run() -> object:
        with transaction.atomic():
            with connection.cursor() as cursor:
                cursor.execute(f"DROP INDEX IF EXISTS {INDEX}")
            result = fn()
            transaction.set_rollback(True)
        return result

    return run


def _python_lead_cost(lead_id: int) -> Decimal:
    rows = Message.objects.filter(conversation__lead_id=lead_id, role=MessageRole.AGENT).only(
        "model", "prompt_tokens", "completion_tokens"
    )
    total = Decimal(0)
    for row in rows:
        given, taken = row.prompt_tokens or 0, row.completion_tokens or 0
        total += selectors.price_usd(model=row.model, prompt_tokens=given, completion_tokens=taken) or 0
    return total


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=7)
    args = parser.parse_args()
    last = (
        Message.objects.filter(role=MessageRole.AGENT)
        .order_by("-created_at")
        .values_list("created_at", flat=True)
    )
    day = timezone.localdate(last.first())
    month = (day.replace(day=1) - timedelta(days=1)).replace(day=1)  # the last whole month
    agents = Message.objects.filter(role=MessageRole.AGENT).count()
    print(f"{Message.objects.count():,} messages, {agents:,} agent replies; day {day}, month {month:%Y-%m}")
    print(f"load average: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")

    def seed() -> object:
        return selectors.agent_spent_on(day=day)

    def page() -> object:
        return selectors.spend_month(month=month, today=day)

    assert seed() == _without_index(seed)() and page().total_usd == _without_index(page)().total_usd
    for name, fn in (("day's spend (cap seed)", seed), ("month by day (Spend page)", page)):
        new, old = [], []
        for _ in range(args.runs):
            old.append(_median_ms(_without_index(fn), 1))
            new.append(_median_ms(fn, 1))
        fast, slow = statistics.median(new), statistics.median(old)
        print(f"{name:28} with index {fast:8.1f} ms   without {slow:8.1f} ms   ratio {slow / fast:6.1f}x")

    ids = list(Lead.objects.values_list("id", flat=True))
    lead_ids = random.Random(7).sample(ids, 50)
    for lead_id in lead_ids[:3]:
        assert selectors.lead_spend(lead_id=lead_id).usd == _python_lead_cost(lead_id)
    new = _median_ms(lambda: [selectors.lead_spend(lead_id=i) for i in lead_ids], args.runs) / len(lead_ids)
    old = _median_ms(lambda: [_python_lead_cost(i) for i in lead_ids], args.runs) / len(lead_ids)
    label = "lead cost (per lead)"
    print(f"{label:28} selector   {new:8.2f} ms   python sum {old:8.2f} ms   ratio {old / new:6.1f}x")

    settings.AGENT_DAILY_TOKEN_CAP = 10**12
    settings.AGENT_DAILY_USD_CAP = 10.0**6
    settings.AGENT_LEAD_DAILY_TOKEN_CAP = 10**12
    settings.AGENT_LEAD_DAILY_USD_CAP = 10.0**6
    backend = settings.CACHES["default"]["BACKEND"].rsplit(".", 1)[-1]
    for lead_id in lead_ids:  # seed each lead's counters once, as its first turn of the day would
        budget.budget_release(reservation=budget.budget_reserve(lead_id=lead_id))

    def turn_caps() -> None:
        for lead_id in lead_ids:
            reservation = budget.budget_reserve(lead_id=lead_id)
            budget.budget_settle(
                reservation=reservation, model="gpt-4o-mini", prompt_tokens=900, completion_tokens=80
            )

    queries_before = len(connection.queries)
    per_turn = _median_ms(turn_caps, args.runs) / len(lead_ids)
    nothing = _median_ms(lambda: [cache.get(f"bench:{i}") for i in lead_ids], args.runs) / len(lead_ids)
    label = f"caps per turn ({backend})"
    statements = len(connection.queries) - queries_before
    print(
        f"{label:28} reserve+settle {per_turn * 1000:7.0f} µs   one cache get {nothing * 1000:5.0f} µs",
        end="",
    )
    print(f"   SQL statements: {statements}")
    print(f"load average: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    main()
