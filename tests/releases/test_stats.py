"""The statistics the app and bench/sim_experiments.py share."""

import random
import subprocess
import sys
from pathlib import Path

import pytest

from prompts.releases import stats
from prompts.releases.stats import ArmCounts

ROOT = Path(__file__).resolve().parents[2]


def test_a_20_percent_split_lands_within_3_points_on_5000_leads():
    keys = [f"lead-{i}" for i in range(5000)]
    share = sum(stats.in_treatment(lead_key=k, experiment_key="experiment-7", share_percent=20) for k in keys)
    assert abs(share / 5000 - 0.20) <= 0.03


def test_assignment_is_the_same_in_another_process():
    keys = [f"subscriber-{i}" for i in range(200)]
    here = [stats.in_treatment(lead_key=k, experiment_key="experiment-3", share_percent=20) for k in keys]
    code = (
        "from prompts.releases import stats; import json; print(json.dumps([stats.in_treatment("
        "lead_key=f'subscriber-{i}', experiment_key='experiment-3', share_percent=20) for i in range(200)]))"
    )
    # A fresh interpreter has another hash seed: Python's hash() would differ, sha256 does not.
    out = subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
        env={"PYTHONHASHSEED": "99"},
    )
    assert [bool(x) for x in __import__("json").loads(out.stdout)] == here


def test_different_experiments_reshuffle_leads():
    keys = [f"lead-{i}" for i in range(2000)]
    a = {k for k in keys if stats.in_treatment(lead_key=k, experiment_key="experiment-1", share_percent=50)}
    b = {k for k in keys if stats.in_treatment(lead_key=k, experiment_key="experiment-2", share_percent=50)}
    assert 0.4 < len(a & b) / len(a) < 0.6


@pytest.mark.parametrize(
    ("a", "b", "verdict"),
    [
        (ArmCounts(200, 1000), ArmCounts(300, 1000), stats.Verdict.B_BETTER),
        (ArmCounts(300, 1000), ArmCounts(200, 1000), stats.Verdict.B_WORSE),
        (ArmCounts(200, 1000), ArmCounts(205, 1000), stats.Verdict.NOT_YET),
        (ArmCounts(2, 10), ArmCounts(9, 10), stats.Verdict.NOT_YET),  # below the minimum per arm
    ],
)
def test_verdicts(a, b, verdict):
    result = stats.sequential_test(a=a, b=b)
    assert stats.verdict_of(result) is verdict
    if verdict is not stats.Verdict.NOT_YET:
        low, high = result.interval
        assert low <= result.lift <= high and (low > 0 or high < 0)  # the interval excludes no change


def test_more_needed_shrinks_as_data_comes_in():
    early = stats.more_needed(a=ArmCounts(20, 100), b=ArmCounts(7, 25), share_b=0.2)
    later = stats.more_needed(a=ArmCounts(160, 800), b=ArmCounts(56, 200), share_b=0.2)
    assert 0 < later < early < stats.PROJECTION_CAP


def test_a_a_false_winners_stay_rare_under_peeking():
    rng = random.Random(5)
    winners = 0
    for _ in range(100):
        s_a = n_a = s_b = n_b = 0
        for i in range(1, 1001):
            if rng.random() < 0.5:
                n_b, s_b = n_b + 1, s_b + (rng.random() < 0.2)
            else:
                n_a, s_a = n_a + 1, s_a + (rng.random() < 0.2)
            if (
                i % 50 == 0
                and stats.sequential_test(a=ArmCounts(s_a, n_a), b=ArmCounts(s_b, n_b)).significant
            ):
                winners += 1
                break
    assert winners <= 8  # alpha 5%; the full 1,000-run figure is printed by bench/sim_experiments.py


def test_the_regression_watch_flags_a_drop_only_on_the_worse_side():
    base = {
        m: ArmCounts(int(2800 * p), 2800)
        for m, p in (
            (stats.Metric.QUALIFICATION, 0.2),
            (stats.Metric.HANDOFF, 0.1),
            (stats.Metric.FAILURE, 0.03),
        )
    }
    dropped = {
        **base,
        stats.Metric.QUALIFICATION: ArmCounts(20, 200),
        stats.Metric.HANDOFF: ArmCounts(20, 200),
        stats.Metric.FAILURE: ArmCounts(6, 200),
    }
    risen = {**dropped, stats.Metric.QUALIFICATION: ArmCounts(60, 200)}
    assert [f.metric for f in stats.regression_check(baseline=base, current=dropped) if f.dropped] == [
        stats.Metric.QUALIFICATION
    ]
    assert [f.metric for f in stats.regression_check(baseline=base, current=risen) if f.dropped] == []
