"""The sequential test behind experiments and the regression watch: mSPRT with always-valid p-values.

Pure Python (no Django), so `bench/sim_experiments.py` simulates exactly what the app computes.

The method is the mixture sequential probability ratio test of Johari, Pekelis and Walsh ("Always valid
inference", 2017) for the difference of two proportions, in its normal approximation. With the observed
difference d = p_B - p_A and its variance V (each arm's Bernoulli variance over its count), a normal
mixing prior N(0, tau^2) on the true difference gives the likelihood ratio

    L = sqrt(V / (V + tau^2)) * exp(d^2 tau^2 / (2 V (V + tau^2)))

and L >= 1/alpha is a decision whose false-positive rate stays below alpha however often, and for however
long, someone looks (Ville's inequality). The p-value 1/L, kept as a running minimum, is always valid, and
the matching confidence sequence is the interval of differences that this rule would not reject. For a
one-sided question ("did it get worse?", the regression watch) the prior is half-normal on that side,
which doubles L in that direction. The rule is fixed before any data: alpha, tau, and a minimum of
`min_per_arm` units in each arm before anything is declared.
"""

import hashlib
import math
from dataclasses import dataclass
from enum import StrEnum

DEFAULT_ALPHA = 0.05
# The size of effect we care about (10 points of qualification rate): the mixture is tuned to it.
DEFAULT_TAU = 0.1
DEFAULT_MIN_PER_ARM = 30
# Projections stop here: past it the page says "more than".
PROJECTION_CAP = 1_000_000


class Alternative(StrEnum):
    TWO_SIDED = "two-sided"
    GREATER = "greater"  # B above A
    LESS = "less"  # B below A


class Verdict(StrEnum):
    B_BETTER = "b_better"
    B_WORSE = "b_worse"
    NOT_YET = "not_yet"


@dataclass(frozen=True)
class ArmCounts:
    successes: int
    trials: int

    @property
    def rate(self) -> float | None:
        return self.successes / self.trials if self.trials else None


@dataclass(frozen=True)
class SequentialResult:
    a: ArmCounts
    b: ArmCounts
    lift: float | None  # p_B - p_A (absolute points as a fraction)
    interval: tuple[float, float] | None  # the always-valid (1 - alpha) confidence sequence for the lift
    likelihood_ratio: float
    p_value: float  # always valid: 1 / L, capped at 1
    significant: bool
    alpha: float
    alternative: Alternative

    @property
    def relative_lift(self) -> float | None:
        if self.lift is None or not self.a.rate:
            return None
        return self.lift / self.a.rate

    def as_dict(self) -> dict:
        return {
            "a": {"successes": self.a.successes, "trials": self.a.trials, "rate": self.a.rate},
            "b": {"successes": self.b.successes, "trials": self.b.trials, "rate": self.b.rate},
            "lift": self.lift,
            "relative_lift": self.relative_lift,
            "interval": list(self.interval) if self.interval else None,
            "p_value": self.p_value,
            "significant": self.significant,
            "alpha": self.alpha,
            "alternative": str(self.alternative),
        }


def _variance(successes: int, trials: int) -> float:
    # Smoothed (Agresti-Caffo style) so a 0% or 100% arm does not claim zero variance at small counts.
    p = (successes + 1) / (trials + 2)
    return p * (1 - p) / trials


def _normal_cdf(x: float) -> float:
    return 0.5 * math.erfc(-x / math.sqrt(2))


def _log_ratio(*, diff: float, variance: float, tau: float, alternative: Alternative) -> float:
    t2 = tau * tau
    log_l = 0.5 * math.log(variance / (variance + t2)) + diff * diff * t2 / (2 * variance * (variance + t2))
    if alternative is Alternative.TWO_SIDED:
        return log_l
    signed = diff if alternative is Alternative.GREATER else -diff
    tail = _normal_cdf(signed * tau / math.sqrt(variance * (variance + t2)))
    return log_l + math.log(2) + math.log(max(tail, 1e-300))


def _half_width(*, variance: float, tau: float, alpha: float) -> float:
    t2 = tau * tau
    return math.sqrt(
        variance * (variance + t2) / t2 * (2 * math.log(1 / alpha) + math.log((variance + t2) / variance))
    )


def sequential_test(
    *,
    a: ArmCounts,
    b: ArmCounts,
    alpha: float = DEFAULT_ALPHA,
    tau: float = DEFAULT_TAU,
    alternative: Alternative = Alternative.TWO_SIDED,
    min_per_arm: int = DEFAULT_MIN_PER_ARM,
) -> SequentialResult:
    """mSPRT of B against A at one look. Call it at every look; a True `significant` is final."""
    if a.trials <= 0 or b.trials <= 0:
        return SequentialResult(a, b, None, None, 1.0, 1.0, False, alpha, alternative)
    diff = b.successes / b.trials - a.successes / a.trials
    variance = _variance(a.successes, a.trials) + _variance(b.successes, b.trials)
    log_l = _log_ratio(diff=diff, variance=variance, tau=tau, alternative=alternative)
    ratio = math.exp(min(log_l, 700.0))
    p_value = min(1.0, 1 / ratio)
    half = _half_width(variance=variance, tau=tau, alpha=alpha)
    enough = a.trials >= min_per_arm and b.trials >= min_per_arm
    return SequentialResult(
        a=a,
        b=b,
        lift=diff,
        interval=(max(-1.0, diff - half), min(1.0, diff + half)),
        likelihood_ratio=ratio,
        p_value=p_value,
        significant=enough and log_l >= math.log(1 / alpha),
        alpha=alpha,
        alternative=alternative,
    )


def verdict_of(result: SequentialResult, *, higher_is_better: bool = True) -> Verdict:
    if not result.significant or result.lift is None or result.lift == 0:
        return Verdict.NOT_YET
    better = result.lift > 0 if higher_is_better else result.lift < 0
    return Verdict.B_BETTER if better else Verdict.B_WORSE


def more_needed(
    *,
    a: ArmCounts,
    b: ArmCounts,
    share_b: float,
    alpha: float = DEFAULT_ALPHA,
    tau: float = DEFAULT_TAU,
    min_effect: float = 0.05,
    min_per_arm: int = DEFAULT_MIN_PER_ARM,
) -> int:
    """How many more units (both arms together, split at `share_b`) until the test would decide, if the
    rates stay where they are. A lift smaller than `min_effect` is planned at `min_effect`: the smallest
    change worth acting on. Returns PROJECTION_CAP when not reachable below it."""
    if not 0 < share_b < 1:
        raise ValueError("share_b must be between 0 and 1")
    p_a = (a.successes + 1) / (a.trials + 2)
    p_b = (b.successes + 1) / (b.trials + 2)
    effect = max(abs(p_b - p_a), min_effect)
    threshold = math.log(1 / alpha)

    def decides(extra: int) -> bool:
        n_a = a.trials + extra * (1 - share_b)
        n_b = b.trials + extra * share_b
        if n_a < min_per_arm or n_b < min_per_arm:
            return False
        variance = p_a * (1 - p_a) / n_a + p_b * (1 - p_b) / n_b
        return (
            _log_ratio(diff=effect, variance=variance, tau=tau, alternative=Alternative.TWO_SIDED)
            >= threshold
        )

    if decides(0):
        return 0
    low, high = 0, 1
    while not decides(high):
        if high >= PROJECTION_CAP:
            return PROJECTION_CAP
        low, high = high, min(high * 2, PROJECTION_CAP)
    while high - low > 1:
        middle = (low + high) // 2
        if decides(middle):
            high = middle
        else:
            low = middle
    return high


def assignment_bucket(*, lead_key: str, experiment_key: str) -> float:
    """A lead's place in [0, 1) for one experiment: the same on every worker, after every restart."""
    digest = hashlib.sha256(f"{experiment_key}:{lead_key}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def in_treatment(*, lead_key: str, experiment_key: str, share_percent: float) -> bool:
    return assignment_bucket(lead_key=lead_key, experiment_key=experiment_key) < share_percent / 100


# --- The regression watch ----------


class Metric(StrEnum):
    QUALIFICATION = "qualification"
    HANDOFF = "handoff"
    FAILURE = "failure"


# Higher qualification is better; higher handoff and failure rates are worse.
HIGHER_IS_BETTER = {Metric.QUALIFICATION: True, Metric.HANDOFF: False, Metric.FAILURE: False}
# The watch's alpha, split across its three metrics in advance so that all of them together raise a false
# alarm at most WATCH_ALPHA of the time.
WATCH_ALPHA = 0.05
WATCH_ALPHA_SPLIT = {Metric.QUALIFICATION: 0.04, Metric.HANDOFF: 0.005, Metric.FAILURE: 0.005}
# Each arm's variance is estimated from its own rate, which is too optimistic over the first few dozen
# conversations (a rare failure seen twice in 30 looks like a jump): no alarm before this many.
WATCH_MIN_CONVERSATIONS = 100


@dataclass(frozen=True)
class WatchFinding:
    metric: Metric
    result: SequentialResult

    @property
    def dropped(self) -> bool:
        return self.result.significant


def regression_check(
    *,
    baseline: dict[Metric, ArmCounts],
    current: dict[Metric, ArmCounts],
    tau: float = DEFAULT_TAU,
    min_per_arm: int = WATCH_MIN_CONVERSATIONS,
    alpha: float = WATCH_ALPHA,
) -> list[WatchFinding]:
    """One look of the watch: for each metric, a one-sided mSPRT of "the new version is worse"."""
    findings = []
    for metric, share in WATCH_ALPHA_SPLIT.items():
        worse = Alternative.LESS if HIGHER_IS_BETTER[metric] else Alternative.GREATER
        result = sequential_test(
            a=baseline[metric],
            b=current[metric],
            alpha=alpha * share / WATCH_ALPHA,
            tau=tau,
            alternative=worse,
            min_per_arm=min_per_arm,
        )
        findings.append(WatchFinding(metric=metric, result=result))
    return findings
