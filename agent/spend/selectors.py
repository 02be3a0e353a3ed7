"""Reading spend: the price of a call, a conversation's cost, today's and this month's spend per purpose.

The agent's spend is its reply rows (model and token counts on `leads.Message`); evaluation, rehearsal and
scoring spend is `SpendDay` (agent.budget.budget_record). USD comes from AGENT_MODEL_PRICES (USD per million
tokens); a model the table does not name counts tokens and no dollars (`unpriced` says so).
"""

from __future__ import annotations

import calendar
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.db.models import Count, Sum
from django.db.models.functions import Coalesce, TruncDate
from django.utils import timezone

from agent.spend.models import SpendDay, SpendPurpose
from leads.models import Message, MessageRole

MILLION = Decimal(1_000_000)


def model_prices(*, model: str) -> tuple[Decimal, Decimal] | None:
    """(input, output) USD per million tokens; a dated snapshot ("gpt-6-luna-2026-10-01") is priced as its
    family, the longest configured name it starts with."""
    table = settings.AGENT_MODEL_PRICES
    if model in table:
        return table[model]
    for name in sorted(table, key=len, reverse=True):
        if name and model.startswith(name):
            return table[name]
    return None


def price_usd(*, model: str, prompt_tokens: int, completion_tokens: int) -> Decimal | None:
    prices = model_prices(model=model)
    if prices is None:
        return None
    given, taken = prices
    return (Decimal(prompt_tokens) * given + Decimal(completion_tokens) * taken) / MILLION


def usd_micros(value: Decimal | None) -> int:
    return int((value or Decimal(0)) * MILLION)


# --- A conversation's cost (the lead page, the inbox conversation) -----------------------------------------


@dataclass(frozen=True)
class ReplyCost:
    prompt_tokens: int
    completion_tokens: int
    usd: Decimal | None  # None: the model is not priced

    @property
    def tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens


@dataclass(frozen=True)
class LeadSpend:
    """The model's spend on one lead's conversations: every agent reply's tokens, priced per model."""

    replies: int
    prompt_tokens: int
    completion_tokens: int
    usd: Decimal
    unpriced_models: tuple[str, ...] = ()

    @property
    def tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens


def reply_cost(*, message: Message) -> ReplyCost | None:
    """One agent reply's cost from the row already loaded (no query); None for rows without tokens."""
    if message.role != MessageRole.AGENT or (
        message.prompt_tokens is None and message.completion_tokens is None
    ):
        return None
    given, taken = message.prompt_tokens or 0, message.completion_tokens or 0
    return ReplyCost(
        given, taken, price_usd(model=message.model or "", prompt_tokens=given, completion_tokens=taken)
    )


def reply_costs_attach(*, messages: Iterable[Message]) -> None:
    """Set `.cost` (a ReplyCost or None) on each loaded message, for the per-reply detail on hover."""
    for message in messages:
        message.cost = reply_cost(message=message)  # type: ignore[attr-defined]


def lead_spend(*, lead_id: int) -> LeadSpend:
    """Every agent reply to the lead, grouped by model, priced: one query."""
    rows = (
        Message.objects.filter(conversation__lead_id=lead_id, role=MessageRole.AGENT)
        .values("model")
        .annotate(n=Count("id"), p=Coalesce(Sum("prompt_tokens"), 0), c=Coalesce(Sum("completion_tokens"), 0))
        .order_by()
    )
    return _lead_spend(rows)


def lead_spend_of(*, messages: Iterable[Message]) -> LeadSpend:
    """The same figure from a lead's messages already loaded (the lead page's transcript, the inbox
    thread: every message of every conversation of the lead), grouped and priced the same way: no query."""
    groups: dict[str, dict[str, Any]] = {}
    for m in messages:
        if m.role != MessageRole.AGENT:
            continue
        row = groups.setdefault(m.model or "", {"model": m.model or "", "n": 0, "p": 0, "c": 0})
        row["n"] += 1
        row["p"] += m.prompt_tokens or 0
        row["c"] += m.completion_tokens or 0
    return _lead_spend(groups.values())


def _lead_spend(rows: Iterable[Mapping[str, Any]]) -> LeadSpend:
    replies = prompt = completion = 0
    usd = Decimal(0)
    unpriced: list[str] = []
    for row in rows:
        replies += row["n"]
        prompt += row["p"]
        completion += row["c"]
        if not row["p"] and not row["c"]:
            continue
        cost = price_usd(model=row["model"] or "", prompt_tokens=row["p"], completion_tokens=row["c"])
        if cost is None:
            unpriced.append(row["model"] or "?")
        else:
            usd += cost
    return LeadSpend(replies, prompt, completion, usd, tuple(sorted(unpriced)))


# --- Today's spend (seeds the caps' counters) ---------------------------------------------------------------


def day_start(day: date) -> datetime:
    return timezone.make_aware(datetime.combine(day, time.min))


@dataclass(frozen=True)
class Spent:
    tokens: int = 0
    micros: int = 0  # USD millionths

    @property
    def usd(self) -> Decimal:
        return Decimal(self.micros) / MILLION


def _priced(rows: Iterable[Mapping[str, Any]]) -> Spent:
    tokens = micros = 0
    for row in rows:
        tokens += row["p"] + row["c"]
        micros += usd_micros(
            price_usd(model=row["model"] or "", prompt_tokens=row["p"], completion_tokens=row["c"])
        )
    return Spent(tokens, micros)


def agent_spent_on(*, day: date, lead_id: int | None = None) -> Spent:
    """The agent's spend on `day` (the team's day), overall or for one lead: one grouped query."""
    queryset = Message.objects.filter(
        role=MessageRole.AGENT,
        created_at__gte=day_start(day),
        created_at__lt=day_start(day + timedelta(days=1)),
    )
    if lead_id is not None:
        queryset = queryset.filter(conversation__lead_id=lead_id)
    rows = (
        queryset.values("model")
        .annotate(p=Coalesce(Sum("prompt_tokens"), 0), c=Coalesce(Sum("completion_tokens"), 0))
        .order_by()
    )
    return _priced(rows)


def run_spent_on(*, purpose: str, day: date) -> Spent:
    """Evaluation, rehearsal or scoring spend on `day` (its SpendDay row): one query."""
    row = SpendDay.objects.filter(day=day, purpose=purpose).values(
        "prompt_tokens", "completion_tokens", "usd_micros"
    )
    found = row.first()
    if found is None:
        return Spent()
    return Spent(found["prompt_tokens"] + found["completion_tokens"], found["usd_micros"])


# --- This month against the budget ---------------------------------------------------------------------


@dataclass
class PurposeTotal:
    purpose: str
    label: str
    tokens: int = 0
    usd: Decimal = Decimal(0)


@dataclass
class DaySpend:
    day: date
    usd: dict[str, Decimal] = field(default_factory=dict)  # purpose → USD
    cumulative: Decimal = Decimal(0)

    @property
    def total(self) -> Decimal:
        return sum(self.usd.values(), Decimal(0))

    @property
    def row(self) -> list[Decimal | None]:
        """USD per purpose, in SpendPurpose's order (a table row)."""
        return [self.usd.get(purpose) for purpose in SpendPurpose]


@dataclass
class MonthSpend:
    month: date  # the first day
    days: list[DaySpend]
    totals: list[PurposeTotal]
    budget: Decimal
    unpriced_models: tuple[str, ...] = ()

    @property
    def total_usd(self) -> Decimal:
        return sum((t.usd for t in self.totals), Decimal(0))

    @property
    def total_tokens(self) -> int:
        return sum(t.tokens for t in self.totals)

    @property
    def budget_share(self) -> float | None:
        return float(self.total_usd / self.budget) if self.budget else None


def month_start(day: date) -> date:
    return day.replace(day=1)


def spend_month(*, month: date | None = None, today: date | None = None) -> MonthSpend:
    """Daily spend per purpose over a month, with totals and the budget: two queries.

    The agent's replies are grouped by day and model in SQL (TruncDate in the team's time zone) and priced
    per group; the runs' spend is their SpendDay rows.
    """
    today = today or timezone.localdate()
    first = month_start(month or today)
    days_in_month = calendar.monthrange(first.year, first.month)[1]
    last = first + timedelta(days=days_in_month)
    by_day = {first + timedelta(days=i): DaySpend(first + timedelta(days=i)) for i in range(days_in_month)}
    totals = {p.value: PurposeTotal(p.value, p.label) for p in SpendPurpose}
    unpriced: set[str] = set()

    rows = (
        Message.objects.filter(
            role=MessageRole.AGENT, created_at__gte=day_start(first), created_at__lt=day_start(last)
        )
        .annotate(day=TruncDate("created_at", tzinfo=timezone.get_current_timezone()))
        .values("day", "model")
        .annotate(p=Coalesce(Sum("prompt_tokens"), 0), c=Coalesce(Sum("completion_tokens"), 0))
        .order_by()
    )
    agent = totals[SpendPurpose.AGENT]
    for row in rows:
        if not row["p"] and not row["c"]:
            continue
        agent.tokens += row["p"] + row["c"]
        cost = price_usd(model=row["model"] or "", prompt_tokens=row["p"], completion_tokens=row["c"])
        if cost is None:
            unpriced.add(row["model"] or "?")
            continue
        agent.usd += cost
        spent = by_day.get(row["day"])
        if spent is not None:
            spent.usd[SpendPurpose.AGENT] = spent.usd.get(SpendPurpose.AGENT, Decimal(0)) + cost

    for run in SpendDay.objects.filter(day__gte=first, day__lt=last).only(
        "day", "purpose", "prompt_tokens", "completion_tokens", "usd_micros"
    ):
        usd = Decimal(run.usd_micros) / MILLION
        total = totals[run.purpose]
        total.tokens += run.prompt_tokens + run.completion_tokens
        total.usd += usd
        by_day[run.day].usd[run.purpose] = by_day[run.day].usd.get(run.purpose, Decimal(0)) + usd

    running = Decimal(0)
    days = []
    for day in sorted(by_day):
        spent = by_day[day]
        running += spent.total
        spent.cumulative = running
        days.append(spent)
    return MonthSpend(
        month=first,
        days=days,
        totals=list(totals.values()),
        budget=Decimal(str(settings.SPEND_MONTHLY_BUDGET_USD)),
        unpriced_models=tuple(sorted(unpriced)),
    )
