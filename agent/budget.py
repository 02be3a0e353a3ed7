"""Daily spend caps: check before a model call, record after it.

Two kinds of caller:

* The agent's turn (`budget_reserve` at the gate, `budget_settle` after the call). The caps live as
  integer counters in the Django cache (Redis in production: INCRBY is atomic across workers), one per
  day and scope (all leads, one lead) and unit (tokens, USD millionths). A counter missing from the cache
  is seeded from the facts — the agent's reply rows of the day, drafts and superseded replies included
  (one query per day for the overall counters, one on a lead's first turn of the day for its own).
  A turn *reserves* its estimate (AGENT_TURN_ESTIMATE_TOKENS, priced at the model's output price, an
  upper bound) by incrementing the counters first and reading the new value: if that value is over a
  cap, the reservation is taken back and the turn is refused. So two concurrent turns cannot both pass
  on the last slice of a cap — the reserved total never exceeds it, and the real spend overshoots it by
  at most what the settled calls used beyond their estimates. After the call the reservation is settled
  to the real usage. The common turn adds cache commands and no SQL statement.

  Why counters in the cache rather than a daily row updated with F(): the row would add a SELECT at the
  gate and an UPDATE after the call to every turn (and a row lock all turns queue on), while the reply
  row already records the facts the counters are seeded from.

* Runs (evaluation, rehearsal, scoring): `budget_check(purpose=...)` before a run starts, raising
  `BudgetExceeded` (a 409 at the API edge) with the cap named; while it runs, its model calls are
  recorded into that purpose's `SpendDay` row (an F() update per call) by wrapping the work in
  `with spend_as(purpose=...)`, or by calling `budget_record(...)` directly.

Caps are settings (0 = no cap); the day is the team's (TIME_ZONE).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.core.cache import cache, caches
from django.core.cache.backends.redis import RedisCache
from django.db import IntegrityError, transaction
from django.db.models import F
from django.utils import timezone

from agent import llm
from agent.spend import selectors
from agent.spend.models import SpendDay, SpendPurpose
from agent.spend.selectors import Spent
from config.errors import Conflict

logger = logging.getLogger(__name__)

Purpose = SpendPurpose
COUNTER_TTL_SECONDS = 2 * 24 * 3600

_CAP_SETTINGS: dict[str, tuple[str, str]] = {
    SpendPurpose.AGENT: ("AGENT_DAILY_TOKEN_CAP", "AGENT_DAILY_USD_CAP"),
    SpendPurpose.EVALUATION: ("EVALUATION_DAILY_TOKEN_CAP", "EVALUATION_DAILY_USD_CAP"),
    SpendPurpose.REHEARSAL: ("REHEARSAL_DAILY_TOKEN_CAP", "REHEARSAL_DAILY_USD_CAP"),
    SpendPurpose.SCORING: ("SCORING_DAILY_TOKEN_CAP", "SCORING_DAILY_USD_CAP"),
}
_LEAD_CAP_SETTINGS = ("AGENT_LEAD_DAILY_TOKEN_CAP", "AGENT_LEAD_DAILY_USD_CAP")


class BudgetExceeded(Conflict):
    """A daily cap is reached: the run is not started (409), the turn goes to a person."""

    def __init__(self, refusal: Refusal) -> None:
        super().__init__(refusal.reason, field="budget")
        self.refusal = refusal


@dataclass(frozen=True)
class Cap:
    purpose: str
    setting: str
    unit: str  # "tokens" | "usd"
    limit: int  # tokens, or USD millionths
    lead_id: int | None = None

    def describe(self, amount: int) -> str:
        return (
            f"{amount:,} tokens" if self.unit == "tokens" else f"${Decimal(amount) / selectors.MILLION:,.2f}"
        )


@dataclass(frozen=True)
class Refusal:
    cap: Cap
    spent: int  # in the cap's unit, before this call

    @property
    def reason(self) -> str:
        who = "for this lead" if self.cap.lead_id is not None else "overall"
        what = "token" if self.cap.unit == "tokens" else "money"
        return (
            f"The {self.cap.purpose} daily {what} cap {who} is reached ({self.cap.setting} = "
            f"{self.cap.describe(self.cap.limit)}; {self.cap.describe(self.spent)} spent today)."
        )


@dataclass
class Reservation:
    """What a turn reserved on the counters, to settle after the call (or give back)."""

    purpose: str
    day: date
    lead_id: int | None
    estimate_tokens: int
    estimate_micros: int
    keys: list[tuple[str, str]] = field(default_factory=list)  # (cache key, unit)
    settled: bool = False


def _limit(name: str, unit: str) -> int:
    value = getattr(settings, name, 0) or 0
    return int(value) if unit == "tokens" else selectors.usd_micros(Decimal(str(value)))


def caps_for(*, purpose: str, lead_id: int | None = None) -> list[Cap]:
    """The caps in force (0 = none): the purpose's overall caps, and for the agent the per-lead ones."""
    tokens_name, usd_name = _CAP_SETTINGS[purpose]
    caps = [
        Cap(purpose, tokens_name, "tokens", _limit(tokens_name, "tokens")),
        Cap(purpose, usd_name, "usd", _limit(usd_name, "usd")),
    ]
    if purpose == SpendPurpose.AGENT and lead_id is not None:
        tokens_name, usd_name = _LEAD_CAP_SETTINGS
        caps += [
            Cap(purpose, tokens_name, "tokens", _limit(tokens_name, "tokens"), lead_id),
            Cap(purpose, usd_name, "usd", _limit(usd_name, "usd"), lead_id),
        ]
    return [cap for cap in caps if cap.limit > 0]


def _key(*, purpose: str, day: date, lead_id: int | None, unit: str) -> str:
    scope = f"lead:{lead_id}" if lead_id is not None else "all"
    return f"budget:{purpose}:{day.isoformat()}:{scope}:{unit}"


def _estimate(*, tokens: int, model: str) -> int:
    """USD millionths of `tokens` at the model's output price (the dearer side: an upper bound)."""
    prices = selectors.model_prices(model=model)
    if prices is None:
        return 0
    return selectors.usd_micros(Decimal(tokens) * prices[1] / selectors.MILLION)


def _seed(*, key: str, unit: str, spent: Spent) -> None:
    cache.add(key, spent.tokens if unit == "tokens" else spent.micros, COUNTER_TTL_SECONDS)


# --- The agent's turn ---------------------------------------------------------------------------------------


def budget_reserve(
    *,
    purpose: str = SpendPurpose.AGENT,
    lead_id: int | None = None,
    estimate_tokens: int | None = None,
    model: str = "",
) -> Reservation:
    """Reserve one call's estimate on today's counters, or raise BudgetExceeded naming the cap reached.

    If the cache fails, the turn is let through (logged): a broken counter must not silence every lead.
    """
    day = timezone.localdate()
    tokens = settings.AGENT_TURN_ESTIMATE_TOKENS if estimate_tokens is None else estimate_tokens
    micros = _estimate(tokens=tokens, model=model or settings.OPENAI_MODEL)
    reservation = Reservation(purpose, day, lead_id, tokens, micros)
    caps = caps_for(purpose=purpose, lead_id=lead_id)
    if not caps:
        return reservation
    try:
        _reserve(reservation=reservation, caps=caps)
    except BudgetExceeded:
        raise
    except Exception:  # the cache backend (Redis) failed
        logger.exception("budget: the spend counters are unavailable; the turn is not capped")
        reservation.keys = []
    return reservation


# Adds each delta to its counter in one round trip to Redis (a script: the commands run back to back, atomic
# per key) and returns the new values, nil for a counter that does not exist (not seeded yet).
_INCR_SCRIPT = """
local out = {}
for i, key in ipairs(KEYS) do
  if redis.call('EXISTS', key) == 1 then out[i] = redis.call('INCRBY', key, ARGV[i]) else out[i] = false end
end
return out
"""


def _incr_many(deltas: dict[str, int]) -> dict[str, int | None]:
    """Add each delta to its counter; None for a counter missing from the cache (nothing added to it)."""
    backend = caches["default"]
    if isinstance(backend, RedisCache):
        keys = [backend.make_and_validate_key(key) for key in deltas]
        client = backend._cache.get_client(None, write=True)
        values: list[Any] = client.eval(  # type: ignore[assignment]
            _INCR_SCRIPT, len(keys), *keys, *(str(delta) for delta in deltas.values())
        )
        return {key: None if value is None else int(value) for key, value in zip(deltas, values, strict=True)}
    out: dict[str, int | None] = {}
    for key, delta in deltas.items():  # other backends (the local demo's memory): incr is atomic per key
        try:
            out[key] = backend.incr(key, delta)
        except ValueError:
            out[key] = None
    return out


def _reserve(*, reservation: Reservation, caps: list[Cap]) -> None:
    day = reservation.day
    planned = [
        (
            cap,
            _key(purpose=cap.purpose, day=day, lead_id=cap.lead_id, unit=cap.unit),
            reservation.estimate_tokens if cap.unit == "tokens" else reservation.estimate_micros,
        )
        for cap in caps
    ]
    values = _incr_many({key: amount for _, key, amount in planned})
    missing = [(cap, key, amount) for cap, key, amount in planned if values[key] is None]
    if missing:  # the first turn of the day (or of the lead's day): seed from the reply rows, then add
        seeds: dict[int | None, Spent] = {}
        for cap, key, _ in missing:
            if cap.lead_id not in seeds:
                seeds[cap.lead_id] = selectors.agent_spent_on(day=day, lead_id=cap.lead_id)
            _seed(key=key, unit=cap.unit, spent=seeds[cap.lead_id])
        values.update(_incr_many({key: amount for _, key, amount in missing}))
    reservation.keys = [(key, cap.unit) for cap, key, _ in planned if values[key] is not None]
    for cap, key, amount in planned:
        value = values[key]
        if value is not None and value > cap.limit:
            budget_release(reservation=reservation)
            raise BudgetExceeded(Refusal(cap=cap, spent=value - amount))


def budget_settle(
    *, reservation: Reservation, model: str, prompt_tokens: int, completion_tokens: int
) -> None:
    """Replace the reservation by what the call used (0 and 0 when it failed before answering)."""
    if reservation.settled:
        return
    reservation.settled = True
    if not reservation.keys:
        return
    used_micros = selectors.usd_micros(
        selectors.price_usd(model=model, prompt_tokens=prompt_tokens, completion_tokens=completion_tokens)
    )
    deltas = {
        "tokens": prompt_tokens + completion_tokens - reservation.estimate_tokens,
        "usd": used_micros - reservation.estimate_micros,
    }
    try:
        _incr_many({key: deltas[unit] for key, unit in reservation.keys if deltas[unit]})
    except Exception:
        logger.exception("budget: could not settle a reservation")


def budget_release(*, reservation: Reservation) -> None:
    """Give a reservation back unused."""
    budget_settle(reservation=reservation, model="", prompt_tokens=0, completion_tokens=0)


# --- Runs: evaluation, rehearsal, scoring ------------------------------------------------------------------


def budget_check(*, purpose: str, lead_id: int | None = None, estimate_tokens: int = 0) -> None:
    """Raise BudgetExceeded if `purpose` has reached one of its daily caps (or would, with the estimate).

    For runs: one query (the purpose's SpendDay row of the day). For the agent: the same reading of the
    counters as a reservation, without reserving.
    """
    day = timezone.localdate()
    caps = caps_for(purpose=purpose, lead_id=lead_id)
    if not caps:
        return
    if purpose == SpendPurpose.AGENT:
        reservation = budget_reserve(purpose=purpose, lead_id=lead_id, estimate_tokens=estimate_tokens)
        budget_release(reservation=reservation)
        return
    spent = selectors.run_spent_on(purpose=purpose, day=day)
    micros = _estimate(tokens=estimate_tokens, model=settings.OPENAI_MODEL)
    for cap in caps:
        used = spent.tokens if cap.unit == "tokens" else spent.micros
        extra = estimate_tokens if cap.unit == "tokens" else micros
        if used >= cap.limit or used + extra > cap.limit:
            raise BudgetExceeded(Refusal(cap=cap, spent=used))


def budget_record(*, purpose: str, model: str, prompt_tokens: int, completion_tokens: int) -> None:
    """Add one run call's usage to today's SpendDay row of `purpose` (F() update, the row made once)."""
    if purpose == SpendPurpose.AGENT:
        return  # the agent's spend is its reply rows
    if not prompt_tokens and not completion_tokens:
        return
    micros = selectors.usd_micros(
        selectors.price_usd(model=model, prompt_tokens=prompt_tokens, completion_tokens=completion_tokens)
    )
    day = timezone.localdate()
    changes = {
        "prompt_tokens": F("prompt_tokens") + prompt_tokens,
        "completion_tokens": F("completion_tokens") + completion_tokens,
        "usd_micros": F("usd_micros") + micros,
        "calls": F("calls") + 1,
        "updated_at": timezone.now(),
    }
    if SpendDay.objects.filter(day=day, purpose=purpose).update(**changes):
        return
    try:
        with transaction.atomic():
            SpendDay.objects.create(
                day=day,
                purpose=purpose,
                prompt_tokens=prompt_tokens,
                completion_tokens=completion_tokens,
                usd_micros=micros,
                calls=1,
            )
    except IntegrityError:  # another call made the day's row first
        SpendDay.objects.filter(day=day, purpose=purpose).update(**changes)


@contextmanager
def spend_as(*, purpose: str) -> Iterator[None]:
    """Every model call made inside (agent.llm) is recorded as `purpose`'s spend."""

    def sink(model: str, prompt_tokens: int, completion_tokens: int) -> None:
        try:
            budget_record(
                purpose=purpose, model=model, prompt_tokens=prompt_tokens, completion_tokens=completion_tokens
            )
        except Exception:  # never lose a verdict over its bookkeeping
            logger.exception("budget: could not record a %s call", purpose)

    token = llm.usage_sink.set(sink)
    try:
        yield
    finally:
        llm.usage_sink.reset(token)
