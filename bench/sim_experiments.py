"""Simulate the experiment and regression-watch statistics the app uses (prompts.releases.stats).

    .venv/bin/python bench/sim_experiments.py [--runs 1000] [--seed 7]

Pure Python: no database, no Django. Prints, against the issue's targets:
- A/A: 1,000 experiments of 2,000 leads (50/50), looked at after every 50 leads: share that ever declared a
  winner (target <= 5%);
- power: a true lift from 20% to 30%, same looks: share that found "B better" within 2,000 leads (>= 80%),
  also at a 20% share for B;
- the regression watch: previous version's trailing 14 days (2,800 conversations) against the new version at
  200 conversations a day, looked at every hour: false alarms over 7 quiet days (<= 5%) and 10-point drops of
  qualification (20% -> 10%) caught within one day (>= 90%).
"""

import argparse
import random
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from prompts.releases import stats  # noqa: E402
from prompts.releases.stats import ArmCounts, Metric  # noqa: E402


def experiment(rng: random.Random, *, p_a: float, p_b: float, leads: int, every: int, share_b: float) -> str:
    """Run one experiment to its end or its first decision; returns the verdict."""
    s_a = n_a = s_b = n_b = 0
    for i in range(1, leads + 1):
        if rng.random() < share_b:
            n_b += 1
            s_b += rng.random() < p_b
        else:
            n_a += 1
            s_a += rng.random() < p_a
        if i % every == 0:
            result = stats.sequential_test(a=ArmCounts(s_a, n_a), b=ArmCounts(s_b, n_b))
            verdict = stats.verdict_of(result)
            if verdict is not stats.Verdict.NOT_YET:
                return verdict
    return stats.Verdict.NOT_YET


def watch(
    rng: random.Random, *, rates: dict, new_rates: dict, days: int, per_day: int, baseline_days: int
) -> int | None:
    """The hour (1-based) of the first alarm, or None."""
    base_n = baseline_days * per_day
    baseline = {m: ArmCounts(sum(rng.random() < p for _ in range(base_n)), base_n) for m, p in rates.items()}
    counts = dict.fromkeys(rates, 0)
    n = 0
    per_hour = per_day / 24
    owed = 0.0
    for hour in range(1, days * 24 + 1):
        owed += per_hour
        while owed >= 1:
            owed -= 1
            n += 1
            for m, p in new_rates.items():
                counts[m] += rng.random() < p
        current = {m: ArmCounts(counts[m], n) for m in rates}
        if n and any(f.dropped for f in stats.regression_check(baseline=baseline, current=current)):
            return hour
    return None


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    rng = random.Random(args.seed)
    runs = args.runs
    started = time.perf_counter()
    ok = True

    def report(label: str, value: float, target: str, passed: bool) -> None:
        nonlocal ok
        ok &= passed
        print(f"{label:<78} {value:6.1%}   target {target:<6} {'ok' if passed else 'MISSED'}")

    print(
        f"mSPRT alpha={stats.DEFAULT_ALPHA}, tau={stats.DEFAULT_TAU}, "
        f"min {stats.DEFAULT_MIN_PER_ARM} per arm; {runs} runs each"
    )
    aa = [experiment(rng, p_a=0.2, p_b=0.2, leads=2000, every=50, share_b=0.5) for _ in range(runs)]
    false_winner = sum(v is not stats.Verdict.NOT_YET for v in aa) / runs
    report(
        "A/A 20% vs 20%, 2,000 leads 50/50, looked at every 50: ever declared a winner",
        false_winner,
        "<= 5%",
        false_winner <= 0.05,
    )
    power = [experiment(rng, p_a=0.2, p_b=0.3, leads=2000, every=50, share_b=0.5) for _ in range(runs)]
    found = sum(v is stats.Verdict.B_BETTER for v in power) / runs
    report("20% -> 30%, 2,000 leads 50/50, looked at every 50: found B better", found, ">= 80%", found >= 0.8)
    wrong = sum(v is stats.Verdict.B_WORSE for v in power) / runs
    print(f"{'  of which declared B worse (wrong sign)':<78} {wrong:6.1%}")
    power20 = [experiment(rng, p_a=0.2, p_b=0.3, leads=2000, every=50, share_b=0.2) for _ in range(runs)]
    found20 = sum(v is stats.Verdict.B_BETTER for v in power20) / runs
    print(f"{'20% -> 30%, 2,000 leads with B at a 20% share (informational)':<78} {found20:6.1%}")

    quiet = {Metric.QUALIFICATION: 0.2, Metric.HANDOFF: 0.1, Metric.FAILURE: 0.03}
    dropped = {**quiet, Metric.QUALIFICATION: 0.1}
    alarms = [
        watch(rng, rates=quiet, new_rates=quiet, days=7, per_day=200, baseline_days=14) for _ in range(runs)
    ]
    false_alarm = sum(a is not None for a in alarms) / runs
    report(
        "watch: quiet 7 days at 200/day vs 14-day baseline, hourly looks: false alarm",
        false_alarm,
        "<= 5%",
        false_alarm <= 0.05,
    )
    caught = [
        watch(rng, rates=quiet, new_rates=dropped, days=1, per_day=200, baseline_days=14) for _ in range(runs)
    ]
    detection = sum(a is not None for a in caught) / runs
    report("watch: qualification 20% -> 10%, caught within one day", detection, ">= 90%", detection >= 0.9)
    hours = sorted(a for a in caught if a is not None)
    if hours:
        print(f"{'  median hour of the alarm':<78} {hours[len(hours) // 2]:>6}")
    print(f"({time.perf_counter() - started:.1f} s)")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
