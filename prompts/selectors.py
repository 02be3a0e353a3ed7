"""Reads over prompt versions: the active version the agent answers with, and each version's results.

Attribution, the rule the figures follow (also written on the prompt page): a version is credited with a
conversation when at least one of its replies is in it, and a qualification is credited to the version
whose reply came just before the lead qualified (prompts.services records both as PromptVersionConversation
rows). Every figure is computed in SQL from those rows and from the agent's messages.
"""

import difflib
import math
from array import array
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any

from django.core.cache import cache
from django.db.models import (
    Case,
    Count,
    F,
    Q,
    QuerySet,
    Sum,
    Value,
    When,
)
from django.db.models.functions import Coalesce, Length
from django.utils import timezone

from leads.models import Message, MessageRole
from prompts.models import PromptVersion, PromptVersionConversation

WILSON_Z_95 = 1.959963984540054


def active_prompt_version() -> PromptVersion | None:
    """The version the agent answers with, or None when no version is active (the agent must not guess)."""
    return PromptVersion.objects.filter(is_active=True).first()


@dataclass(frozen=True)
class Figures:
    conversations: int
    qualified: int
    replies: int
    tokens: int
    median_latency_ms: float | None

    @property
    def success_rate(self) -> float | None:
        return self.qualified / self.conversations if self.conversations else None

    @property
    def interval(self) -> tuple[float, float] | None:
        return wilson_interval(successes=self.qualified, trials=self.conversations)

    def as_dict(self) -> dict:
        low_high = self.interval
        return {
            "conversations": self.conversations,
            "qualified": self.qualified,
            "success_rate": self.success_rate,
            "success_rate_low": low_high[0] if low_high else None,
            "success_rate_high": low_high[1] if low_high else None,
            "replies": self.replies,
            "median_latency_ms": self.median_latency_ms,
            "tokens": self.tokens,
        }


@dataclass(frozen=True)
class VersionResults:
    all_time: Figures
    since_activation: Figures | None  # None for a version that was never activated
    # model -> (prompt tokens, completion tokens) of the version's replies, all time (what they cost).
    tokens_by_model: dict[str, tuple[int, int]] = field(default_factory=dict)

    def as_dict(self) -> dict:
        return {
            **self.all_time.as_dict(),
            "since_activation": self.since_activation.as_dict() if self.since_activation else None,
        }


def wilson_interval(*, successes: int, trials: int, z: float = WILSON_Z_95) -> tuple[float, float] | None:
    """The Wilson score interval for a binomial proportion (95% by default); None with no trials."""
    if trials <= 0:
        return None
    p = successes / trials
    denominator = 1 + z * z / trials
    centre = (p + z * z / (2 * trials)) / denominator
    margin = z * math.sqrt(p * (1 - p) / trials + z * z / (4 * trials * trials)) / denominator
    return max(0.0, centre - margin), min(1.0, centre + margin)


def _tokens() -> Coalesce:
    return Coalesce("prompt_tokens", 0) + Coalesce("completion_tokens", 0)


def prompt_version_list() -> QuerySet[PromptVersion]:
    """Versions newest first; the text itself is left out of the row. Figures come from
    prompt_version_results (or prompt_version_list_with_results), never from the row."""
    return (
        PromptVersion.objects.select_related("author", "activated_by")
        .defer("content")
        .annotate(content_length=Length("content"))
        .order_by("-version")
    )


@dataclass(frozen=True)
class _Counts:
    conversations: int = 0
    qualified: int = 0
    replies: int = 0
    tokens: int = 0


def _fact_counts(*, version_ids: Sequence[int]) -> dict[int, tuple[int, int, int, int]]:
    """(conversations, qualified, conversations since activation, qualified since) per version: one
    grouped query over the conversation facts."""
    since_fact = Q(last_reply_at__gte=F("prompt_version__activated_at"))
    rows = (
        PromptVersionConversation.objects.filter(prompt_version_id__in=version_ids)
        .order_by()
        .values("prompt_version_id")
        .annotate(
            a=Count("id"),
            b=Count("id", filter=Q(qualified_at__isnull=False)),
            c=Count("id", filter=since_fact),
            # Qualified since activation counts only conversations the version also replied in since then,
            # so it can never exceed the conversations figure beside it.
            d=Count("id", filter=since_fact & Q(qualified_at__gte=F("prompt_version__activated_at"))),
        )
        .values_list("prompt_version_id", "a", "b", "c", "d")
    )
    return {version_id: (a, b, c, d) for version_id, a, b, c, d in rows}


# Replies older than this are "settled": no reply can still commit with a created_at that old (a turn
# writes its reply within its 8 s deadline), so their tally can be kept and only newer replies counted.
FIGURES_SETTLE = timedelta(seconds=60)
FIGURES_CACHE_SECONDS = 7 * 24 * 3600


@dataclass
class _ReplyTally:
    """A version's replies up to `watermark`: counts, tokens per model and the exact latency histograms
    (ms -> n), all time and since activation. Every part is a sum, so tallies of disjoint row sets add up;
    the medians are read off the histograms exactly as percentile_cont(0.5) computes them, and kept, so a
    version with no new reply costs no Python work. In the cache the histograms are packed arrays."""

    watermark: datetime | None = None
    replies: int = 0
    tokens: int = 0
    replies_since: int = 0
    tokens_since: int = 0
    by_model: dict[str, tuple[int, int]] = field(default_factory=dict)
    median: float | None = None
    median_since: float | None = None
    packed: tuple[bytes, bytes, bytes, bytes] = (b"", b"", b"", b"")
    _histograms: tuple[dict[int, int], dict[int, int]] | None = field(default=None, repr=False)

    def __getstate__(self) -> dict[str, Any]:
        if self._histograms is not None:
            self.packed = (*_pack(self._histograms[0]), *_pack(self._histograms[1]))
        return {**self.__dict__, "_histograms": None}

    def _open(self) -> tuple[dict[int, int], dict[int, int]]:
        if self._histograms is None:
            whole, since = _unpack(*self.packed[:2]), _unpack(*self.packed[2:])
            self._histograms = (whole, since)
        return self._histograms

    def copy(self) -> "_ReplyTally":
        whole, since = self._open()
        return replace(self, by_model=dict(self.by_model), _histograms=(dict(whole), dict(since)))

    def add_rows(self, rows: list[dict[str, Any]]) -> None:
        whole, since_activation = self._open()
        for row in rows:
            n, latency = row["n"], row["latency"]
            tokens = row["prompt_tokens"] + row["completion_tokens"]
            self.replies += n
            self.tokens += tokens
            p, c = self.by_model.get(row["model"], (0, 0))
            self.by_model[row["model"]] = (p + row["prompt_tokens"], c + row["completion_tokens"])
            if latency is not None:
                whole[latency] = whole.get(latency, 0) + n
            if row["since"]:
                self.replies_since += n
                self.tokens_since += tokens
                if latency is not None:
                    since_activation[latency] = since_activation.get(latency, 0) + n
        self.median, self.median_since = _histogram_median(whole), _histogram_median(since_activation)


def _pack(histogram: dict[int, int]) -> tuple[bytes, bytes]:
    values = sorted(histogram)
    return array("q", values).tobytes(), array("q", [histogram[v] for v in values]).tobytes()


def _unpack(values: bytes, counts: bytes) -> dict[int, int]:
    keys, numbers = array("q"), array("q")
    keys.frombytes(values)
    numbers.frombytes(counts)
    return dict(zip(keys, numbers, strict=True))


def _histogram_median(histogram: dict[int, int]) -> float | None:
    """percentile_cont(0.5) of the values the histogram counts: the middle value, or the mean of the two."""
    total = sum(histogram.values())
    if not total:
        return None
    low_position, high_position = (total - 1) // 2, total // 2
    low = high = None
    seen = 0
    for value in sorted(histogram):
        seen += histogram[value]
        if low is None and seen > low_position:
            low = value
        if seen > high_position:
            high = value
            break
    assert low is not None and high is not None  # noqa: S101 - positions are below the total
    return (low + high) / 2


def _tally_key(version: PromptVersion) -> str:
    # The activation time is part of the key: "since activation" is split at it when rows are tallied.
    activated = version.activated_at.isoformat() if version.activated_at else "never"
    return f"prompts:reply-tally:v1:{version.pk}:{version.created_at.isoformat()}:{activated}"


def _reply_tallies(*, versions: Sequence[PromptVersion]) -> dict[int, _ReplyTally]:
    """Each version's reply figures in ONE query, whatever the number of replies already counted.

    Settled replies (older than FIGURES_SETTLE) are tallied once and kept in the cache with a watermark;
    each call counts only the replies after each version's watermark (an index range on the covering
    partial index message_agent_version_idx: version, created_at, with tokens and latency included) and
    moves the watermark. Exact: the histogram keeps every latency value, and the rows newer than the
    settle time are counted on every call, never kept.
    """
    keys = {v.pk: _tally_key(v) for v in versions}
    cached = cache.get_many(list(keys.values()))
    settled_at = timezone.now() - FIGURES_SETTLE
    settled: dict[int, _ReplyTally] = {}
    by_watermark: dict[datetime | None, list[int]] = defaultdict(list)
    for v in versions:
        tally = cached.get(keys[v.pk])
        settled[v.pk] = tally if isinstance(tally, _ReplyTally) else _ReplyTally()
        by_watermark[settled[v.pk].watermark].append(v.pk)
    newer = Q()
    for watermark, ids in by_watermark.items():
        part = Q(prompt_version_id__in=ids)
        newer |= part & Q(created_at__gt=watermark) if watermark is not None else part
    since = Q(prompt_version__activated_at__isnull=False, created_at__gte=F("prompt_version__activated_at"))
    rows = (
        Message.objects.filter(newer, role=MessageRole.AGENT)
        .order_by()
        .annotate(
            tail=Case(When(created_at__gt=settled_at, then=Value(True)), default=Value(False)),
            since=Case(When(since, then=Value(True)), default=Value(False)),
        )
        .values("prompt_version_id", "tail", "since", "latency_ms", "model")
        .annotate(n=Count("*"), p=Coalesce(Sum("prompt_tokens"), 0), c=Coalesce(Sum("completion_tokens"), 0))
        .values_list("prompt_version_id", "tail", "since", "latency_ms", "model", "n", "p", "c")
    )
    fresh: dict[int, list[dict[str, Any]]] = defaultdict(list)
    tails: dict[int, list[dict[str, Any]]] = defaultdict(list)
    for version_id, tail, is_since, latency, model, n, p, c in rows:
        row = {
            "since": is_since,
            "latency": latency,
            "n": n,
            "model": model or "",
            "prompt_tokens": p,
            "completion_tokens": c,
        }
        (tails if tail else fresh)[version_id].append(row)
    to_cache = {}
    for v in versions:
        tally = settled[v.pk]
        if fresh[v.pk] or tally.watermark is None:
            tally = settled[v.pk] = tally.copy()
            tally.add_rows(fresh[v.pk])
            tally.watermark = max(settled_at, tally.watermark or settled_at)
            to_cache[keys[v.pk]] = tally
    if to_cache:
        cache.set_many(to_cache, timeout=FIGURES_CACHE_SECONDS)
    results = {}
    for v in versions:
        total = settled[v.pk]
        if tails[v.pk]:
            total = total.copy()
            total.add_rows(tails[v.pk])
        results[v.pk] = total
    return results


def prompt_version_results(*, versions: Iterable[PromptVersion]) -> dict[int, VersionResults]:
    """Every figure of these versions from the fact rows: two queries however many versions there are
    (the conversation facts, and the replies newer than what the cache already tallied)."""
    versions = list(versions)
    ids = [v.pk for v in versions]
    if not ids:
        return {}
    facts = _fact_counts(version_ids=ids)
    tallies = _reply_tallies(versions=versions)
    results = {}
    for v in versions:
        f_all, f_qualified, f_since, f_qualified_since = facts.get(v.pk, (0, 0, 0, 0))
        tally = tallies[v.pk]
        since = None
        if v.activated_at is not None:
            since = Figures(
                conversations=f_since,
                qualified=f_qualified_since,
                replies=tally.replies_since,
                tokens=tally.tokens_since,
                median_latency_ms=tally.median_since,
            )
        results[v.pk] = VersionResults(
            all_time=Figures(
                conversations=f_all,
                qualified=f_qualified,
                replies=tally.replies,
                tokens=tally.tokens,
                median_latency_ms=tally.median,
            ),
            since_activation=since,
            tokens_by_model=dict(tally.by_model),
        )
    return results


def prompt_version_list_with_results(
    *, queryset: QuerySet[PromptVersion] | None = None
) -> list[PromptVersion]:
    """Evaluates the (sliced) list and attaches `.results` to each version: three queries in all."""
    versions = list(queryset if queryset is not None else prompt_version_list())
    results = prompt_version_results(versions=versions)
    for v in versions:
        v.results = results[v.pk]
    return versions


def _with_results(version: PromptVersion | None) -> PromptVersion | None:
    if version is not None:
        version.results = prompt_version_results(versions=[version])[version.pk]
    return version


def prompt_version_get(*, version_id: int) -> PromptVersion | None:
    """One version with its full text and its results."""
    return _with_results(prompt_version_list().defer(None).filter(pk=version_id).first())


def prompt_version_get_active() -> PromptVersion | None:
    """The active version with its full text and results, for the pages and the API (not the agent)."""
    return _with_results(prompt_version_list().defer(None).filter(is_active=True).first())


def prompt_version_latest_other(*, exclude_id: int) -> PromptVersion | None:
    """The newest version other than `exclude_id`, with its text: what the page compares by default."""
    return (
        PromptVersion.objects.exclude(pk=exclude_id)
        .order_by("-version")
        .only("pk", "version", "content", "is_active")
        .first()
    )


def prompt_version_content(*, version_id: int) -> PromptVersion | None:
    return PromptVersion.objects.filter(pk=version_id).only("pk", "version", "content", "is_active").first()


def prompt_version_diff(*, version: PromptVersion, against: PromptVersion, context: int = 3) -> str:
    """A unified diff turning `against` into `version`, line by line."""
    # Compare lines without their endings, so a last line with no newline cannot run into the next one.
    lines = difflib.unified_diff(
        against.content.splitlines(),
        version.content.splitlines(),
        fromfile=f"v{against.version}",
        tofile=f"v{version.version}",
        n=context,
        lineterm="",
    )
    return "".join(f"{line}\n" for line in lines)
