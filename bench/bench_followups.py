"""Follow-ups and scoring on the generated dataset: the beat's reads, against a scan of every lead.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/bench_<you> \\
        .venv/bin/python bench/bench_followups.py [--runs 3]

Run on a copy of `bench_data` (50k leads, 1M messages), migrated. "Now" is put 5 hours after the newest
lead message, so the last day's leads are the candidates, with quiet hours off (the dataset's day would
otherwise fall in them). Times, alternating runs (same cache and load):

* followups, new: `followup_candidate_leads` (a range on lead_last_message_idx) + `lead_timelines` (three
  queries) + the rule, which is what the beat runs;
* followups, baseline: the same rule over every lead (all leads read, their timelines built in batches);
* scoring: `scoring_due` (idle conversations not yet scored, through the leads' index).

Both follow-up paths must find the same due leads. Prints medians, the ratio and the machine's load.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from datetime import timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
os.environ.setdefault("DJANGO_DEBUG", "1")  # a local tool: the development settings

import django  # noqa: E402

django.setup()

from django.conf import settings  # noqa: E402
from django.db import connection  # noqa: E402
from django.db.models import Max  # noqa: E402

from agent.followups import selectors  # noqa: E402
from agent.followups.rules import FollowUpConfig, followup_step_due  # noqa: E402
from agent.followups.services import _opt_out  # noqa: E402
from agent.scoring.selectors import scoring_due  # noqa: E402
from leads.models import Lead  # noqa: E402

BATCH = 500


def _due(leads: list[Lead], now, config) -> set[int]:
    facts = selectors.lead_timelines(leads=leads, now=now, opt_out=_opt_out)
    return {
        f.lead.pk
        for f in facts
        if isinstance(followup_step_due(timeline=f.timeline, now=now, config=config), int)
    }


def new(now, config) -> set[int]:
    return _due(selectors.followup_candidate_leads(now=now, config=config, limit=100_000), now, config)


def baseline(now, config) -> set[int]:
    leads = list(Lead.objects.all().order_by("pk"))
    due: set[int] = set()
    for start in range(0, len(leads), BATCH):
        due |= _due(leads[start : start + BATCH], now, config)
    return due


def _time(fn, *args) -> tuple[float, object]:
    started = time.perf_counter()
    result = fn(*args)
    return (time.perf_counter() - started) * 1000, result


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    if connection.vendor != "postgresql":
        raise SystemExit("Run on a PostgreSQL copy of bench_data (DATABASE_URL).")
    settings.FOLLOWUP_QUIET_HOURS = ""
    newest = Lead.objects.aggregate(at=Max("last_message_at"))["at"]
    now = newest + timedelta(hours=5)
    config = FollowUpConfig.from_settings()
    leads = Lead.objects.count()
    times: dict[str, list[float]] = {"new": [], "baseline": [], "scoring": []}
    found_new: object = None
    found_base: object = None
    for _ in range(args.runs):
        ms, found_new = _time(new, now, config)
        times["new"].append(ms)
        ms, found_base = _time(baseline, now, config)
        times["baseline"].append(ms)
        ms, _ = _time(lambda: scoring_due(now=now, limit=100))
        times["scoring"].append(ms)
    assert found_new == found_base, "the indexed read and the scan disagree"
    median = {k: statistics.median(v) for k, v in times.items()}
    candidates = len(selectors.followup_candidate_leads(now=now, config=config, limit=100_000))
    print(f"leads: {leads:,}; candidates (last day): {candidates}; due now: {len(found_new)}")  # type: ignore[arg-type]
    print(f"followups, indexed read + rule: {median['new']:.1f} ms (median of {args.runs})")
    print(f"followups, scan of every lead + rule: {median['baseline']:.1f} ms")
    print(f"ratio: {median['baseline'] / median['new']:.1f}x")
    print(f"scoring_due (100 idle conversations): {median['scoring']:.1f} ms")
    print(f"load average: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    main()
