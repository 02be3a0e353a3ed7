"""Time GET /api/training/insights/ (from the daily rollups) against the same figures as raw SQL over the
base tables, in one run.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/insights_bench \\
        .venv/bin/python bench/bench_insights.py [--runs 30] [--start 2026-10-28 --end 2026-11-26] [--year]

Load the data first with `bench/generate_dataset.py`, migrate, and build the rollups
(`manage.py insights_rollup_rebuild`; the bench refuses to run without them). Three timings alternate in
each round so all see the same cache and load: the endpoint through the whole Django stack (test client,
session auth, permission check, DRF, JSON rendering) reading the rollups; the hand-written SQL for the same
figures over the base tables, every row fetched (the baseline); and the selectors forced onto the base
tables (for reference). Prints the medians, the speed-up over raw SQL, the endpoint's query count and the
load average. Targets on the 2-core machine: 30 days under 50 ms, a year under 150 ms, at least 3x faster
than the raw SQL.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
os.environ.setdefault("DJANGO_DEBUG", "1")  # a local tool: the development settings

import django  # noqa: E402

django.setup()

from django.conf import settings  # noqa: E402
from django.contrib.auth import get_user_model  # noqa: E402
from django.db import connection  # noqa: E402
from django.test import Client  # noqa: E402
from django.test.utils import CaptureQueriesContext  # noqa: E402
from django.utils import timezone  # noqa: E402

from leads import roles  # noqa: E402
from training.insights import selectors  # noqa: E402
from training.insights.selectors import (  # noqa: E402
    HANDOFF_VERBS,
    InsightsFilter,
    insights_default_range,
    insights_rollups_cover,
    training_insights,
)

# The statements the selectors would send over the base tables (the funnel's two included), written by hand.
# %(since)s/%(until)s bound the range.
SUBMITTED = "FROM training_examples e WHERE e.created_at >= %(since)s AND e.created_at < %(until)s"
DECIDED = (
    "FROM training_examples e WHERE e.approved_at >= %(since)s AND e.approved_at < %(until)s "
    "AND e.status IN ('approved', 'rejected')"
)
FUNNEL = ("engaged", "qualified", "booked", "won", "lost")
_COMBOS = [(s, k) for s in ("pending", "approved", "rejected") for k in ("good", "bad", "correction")]
RAW_SQL = [
    "SELECT date_trunc('day', e.created_at AT TIME ZONE %(tz)s) AS day, "
    + ", ".join(f"COUNT(*) FILTER (WHERE e.status = '{s}' AND e.example_type = '{k}')" for s, k in _COMBOS)
    + f" {SUBMITTED} GROUP BY 1 ORDER BY 1",
    "SELECT date_trunc('day', e.approved_at AT TIME ZONE %(tz)s) AS day, "
    "COUNT(*) FILTER (WHERE e.status = 'approved'), COUNT(*) FILTER (WHERE e.status = 'rejected') "
    f"{DECIDED} GROUP BY 1 ORDER BY 1",
    f"SELECT COUNT(*), percentile_cont(0.5) WITHIN GROUP (ORDER BY e.approved_at - e.created_at) {DECIDED}",
    "SELECT e.submitted_by_id, u.first_name, u.last_name, u.username, COUNT(*) AS n, "
    "COUNT(*) FILTER (WHERE e.status = 'approved'), COUNT(*) FILTER (WHERE e.status = 'rejected') "
    "FROM training_examples e JOIN auth_user u ON u.id = e.submitted_by_id "
    "WHERE e.created_at >= %(since)s AND e.created_at < %(until)s "
    "GROUP BY 1, 2, 3, 4 ORDER BY n DESC, u.username LIMIT 10",
    "SELECT e.approved_by_id, u.first_name, u.last_name, u.username, COUNT(*) AS n, "
    "COUNT(*) FILTER (WHERE e.status = 'approved'), COUNT(*) FILTER (WHERE e.status = 'rejected') "
    "FROM training_examples e JOIN auth_user u ON u.id = e.approved_by_id "
    "WHERE e.approved_at >= %(since)s AND e.approved_at < %(until)s AND e.status IN ('approved', 'rejected') "
    "GROUP BY 1, 2, 3, 4 ORDER BY n DESC, u.username LIMIT 10",
    "SELECT lower(trim(substring(e.feedback FROM 1 FOR 200))) AS phrase, COUNT(*) AS n, "
    "COUNT(*) FILTER (WHERE e.example_type = 'bad'), COUNT(*) FILTER (WHERE e.example_type = 'correction') "
    f"{SUBMITTED} AND e.example_type IN ('bad', 'correction') GROUP BY 1 ORDER BY n DESC, phrase LIMIT 10",
    f"SELECT e.message_id, COUNT(*) AS n {SUBMITTED} AND e.example_type IN ('bad', 'correction') "
    "AND e.message_id IS NOT NULL GROUP BY 1 ORDER BY n DESC, e.message_id DESC LIMIT 10",
    "SELECT m.id, m.conversation_id, m.text, v.version FROM messages m "
    "LEFT JOIN prompt_versions v ON v.id = m.prompt_version_id WHERE m.id = ANY(%(message_ids)s)",
    "SELECT f.prompt_version_id, v.version, COUNT(*), "
    + ", ".join(f"COUNT(*) FILTER (WHERE f.{step}_at IS NOT NULL)" for step in FUNNEL)
    + " FROM prompt_version_conversations f JOIN prompt_versions v ON v.id = f.prompt_version_id "
    "WHERE f.first_reply_at >= %(since)s AND f.first_reply_at < %(until)s GROUP BY 1, 2 ORDER BY 2",
    "SELECT f.prompt_version_id, "
    + ", ".join(
        f"percentile_cont(0.5) WITHIN GROUP (ORDER BY f.{step}_at - c.started_at) "
        f"FILTER (WHERE f.{step}_at IS NOT NULL)"
        for step in FUNNEL
    )
    + " FROM prompt_version_conversations f JOIN conversations c ON c.id = f.conversation_id "
    "WHERE f.first_reply_at >= %(since)s AND f.first_reply_at < %(until)s AND ("
    + " OR ".join(f"f.{step}_at IS NOT NULL" for step in FUNNEL)
    + ") GROUP BY 1",
    "SELECT l.status, COUNT(*) FROM leads l WHERE l.created_at >= %(since)s AND l.created_at < %(until)s "
    "GROUP BY 1",
    "SELECT lower(trim(substring(a.data ->> 'reason' FROM 1 FOR 200))) AS reason, COUNT(*) AS n, "
    "SUM(COUNT(*)) OVER () FROM activities a WHERE a.verb = ANY(%(verbs)s) "
    "AND a.created_at >= %(since)s AND a.created_at < %(until)s GROUP BY 1 ORDER BY n DESC, reason LIMIT 10",
]


def run_raw(params: dict) -> int:
    rows = 0
    with connection.cursor() as cursor:
        for sql in RAW_SQL:
            cursor.execute(sql, params)
            found = cursor.fetchall()
            rows += len(found)
            if "e.message_id IS NOT NULL" in sql:
                params = {**params, "message_ids": [r[0] for r in found]}
    return rows


def p90(values: list[float]) -> float:
    return sorted(values)[max(0, int(len(values) * 0.9) - 1)]


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--runs", type=int, default=30)
    parser.add_argument("--start", type=dt.date.fromisoformat)
    parser.add_argument("--end", type=dt.date.fromisoformat)
    parser.add_argument("--year", action="store_true", help="Also time the whole year before --end")
    args = parser.parse_args()
    if connection.vendor != "postgresql":
        sys.exit("Run the benchmark on PostgreSQL (set DATABASE_URL).")
    settings.DEBUG = False  # no query log in the timed runs

    default_start, default_end = insights_default_range()
    end = args.end or default_end
    start = args.start or end - (default_end - default_start)
    ranges = [(start, end)]
    if args.year:
        ranges.append((end - dt.timedelta(days=364), end))

    user = (
        get_user_model()
        .objects.filter(is_active=True, is_staff=True)
        .order_by("-is_superuser", "id")
        .filter(username__startswith="gen_manager")
        .first()
    ) or get_user_model().objects.filter(is_superuser=True).first()
    if user is None or not user.has_perm(roles.PERM_VIEW_EXAMPLES):
        sys.exit("No staff user who may view examples: run bench/generate_dataset.py first.")
    client = Client()
    client.force_login(user)

    counts = {
        table: connection.cursor().execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0]  # noqa: S608
        for table in ("leads", "messages", "training_examples", "prompt_versions", "activities")
    }
    print("data: " + ", ".join(f"{n:,} {table}" for table, n in counts.items()))

    if not insights_rollups_cover(f=InsightsFilter(start=start, end=end)):
        sys.exit("The rollups are not built (or in another time zone): manage.py insights_rollup_rebuild.")

    def base_tables(f: InsightsFilter) -> None:
        cover = selectors.insights_rollups_cover
        selectors.insights_rollups_cover = lambda **_: False  # type: ignore[assignment]
        try:
            training_insights(f=f)
        finally:
            selectors.insights_rollups_cover = cover

    for range_start, range_end in ranges:
        f = InsightsFilter(start=range_start, end=range_end)
        url = f"/api/training/insights/?start={range_start}&end={range_end}"
        params = {
            "since": f.since,
            "until": f.until,
            "tz": timezone.get_current_timezone_name(),
            "verbs": list(HANDOFF_VERBS),
            "message_ids": [],
        }
        # Warm up both paths (plans, caches, the session), and count the endpoint's queries once.
        for _ in range(3):
            response = client.get(url, HTTP_ACCEPT="application/json")
            run_raw(params)
        assert response.status_code == 200, response.content[:500]
        with CaptureQueriesContext(connection) as captured:
            client.get(url, HTTP_ACCEPT="application/json")
        api_times, raw_times, base_times, rollup_times = [], [], [], []
        load_before = os.getloadavg()
        for _ in range(args.runs):
            t0 = time.perf_counter()
            response = client.get(url, HTTP_ACCEPT="application/json")
            body = response.content
            api_times.append((time.perf_counter() - t0) * 1000)
            t0 = time.perf_counter()
            run_raw(params)
            raw_times.append((time.perf_counter() - t0) * 1000)
            t0 = time.perf_counter()
            base_tables(f)
            base_times.append((time.perf_counter() - t0) * 1000)
            t0 = time.perf_counter()
            training_insights(f=f)
            rollup_times.append((time.perf_counter() - t0) * 1000)
        load_after = os.getloadavg()
        api, raw = statistics.median(api_times), statistics.median(raw_times)
        base, alone = statistics.median(base_times), statistics.median(rollup_times)
        with CaptureQueriesContext(connection) as selector_queries:
            training_insights(f=f)
        days = (range_end - range_start).days + 1
        print(f"\nrange {range_start} .. {range_end} ({days} days), {args.runs} runs")
        print(
            f"  endpoint  median {api:7.1f} ms   p90 {p90(api_times):7.1f} ms   ({len(body):,} bytes of JSON)"
        )
        print(
            f"  raw SQL   median {raw:7.1f} ms   p90 {p90(raw_times):7.1f} ms   ({len(RAW_SQL)} statements)"
        )
        print(f"  base tables (no rollups)  median {base:7.1f} ms   p90 {p90(base_times):7.1f} ms")
        print(f"  the selectors alone on the rollups (no HTTP, DRF, JSON)  median {alone:7.1f} ms")
        target = 50 if days <= 31 else 150
        print(
            f"  speed-up  raw SQL / endpoint = {raw / api:.2f}x   (target >= 3x; endpoint median target "
            f"< {target} ms: {'met' if api < target and raw / api >= 3 else 'NOT met'})"
        )
        print(
            "  load avg  "
            + " ".join(f"{x:.2f}" for x in load_before)
            + " -> "
            + " ".join(f"{x:.2f}" for x in load_after)
        )
        print(
            f"  queries   {len(captured.captured_queries)} per request "
            f"(the selectors alone: {len(selector_queries)})"
        )


if __name__ == "__main__":
    main()
