"""Reads over prompt versions: the active version the agent answers with, and each version's results.

Attribution, the rule the figures follow (also written on the prompt page): a version is credited with a
conversation when at least one of its replies is in it, and a qualification is credited to the version
whose reply came just before the lead qualified (prompts.services records both as PromptVersionConversation
rows). Every figure is computed in SQL from those rows and from the agent's messages.
"""

import difflib
import math
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from django.db import connection
from django.db.models import (
    Aggregate,
    BooleanField,
    Case,
    Count,
    F,
    FloatField,
    Q,
    QuerySet,
    Sum,
    Value,
    When,
    Window,
)
from django.db.models.functions import Coalesce, Length, RowNumber

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


_REPLIES, _FACTS = 1, 2


def _counts(*, version_ids: Sequence[int]) -> dict[int, tuple[_Counts, _Counts]]:
    """(all time, since activation) counts per version, in ONE grouped query over the fact tables.

    Two GROUP BY prompt_version_id aggregates, one over the agent's replies (the covering partial index
    message_agent_version_idx) and one over the conversation facts, joined by UNION ALL: the cost is one
    pass over the rows of the versions asked for, not a correlated recount per version.
    """
    since_reply = Q(created_at__gte=F("prompt_version__activated_at"))
    replies = (
        Message.objects.filter(role=MessageRole.AGENT, prompt_version_id__in=version_ids)
        .order_by()
        .values("prompt_version_id")
        .annotate(
            kind=Value(_REPLIES),
            a=Count("id"),
            b=Coalesce(Sum(_tokens()), 0),
            c=Count("id", filter=since_reply),
            d=Coalesce(Sum(_tokens(), filter=since_reply), 0),
        )
        .values_list("prompt_version_id", "kind", "a", "b", "c", "d")
    )
    since_fact = Q(last_reply_at__gte=F("prompt_version__activated_at"))
    facts = (
        PromptVersionConversation.objects.filter(prompt_version_id__in=version_ids)
        .order_by()
        .values("prompt_version_id")
        .annotate(
            kind=Value(_FACTS),
            a=Count("id"),
            b=Count("id", filter=Q(qualified_at__isnull=False)),
            c=Count("id", filter=since_fact),
            # Qualified since activation counts only conversations the version also replied in since then,
            # so it can never exceed the conversations figure beside it.
            d=Count("id", filter=since_fact & Q(qualified_at__gte=F("prompt_version__activated_at"))),
        )
        .values_list("prompt_version_id", "kind", "a", "b", "c", "d")
    )
    found: dict[int, dict[int, tuple[int, int, int, int]]] = defaultdict(dict)
    for version_id, kind, a, b, c, d in replies.union(facts, all=True):
        found[version_id][kind] = (a, b, c, d)
    counts = {}
    for version_id in version_ids:
        r_all, r_tokens, r_since, r_tokens_since = found[version_id].get(_REPLIES, (0, 0, 0, 0))
        f_all, f_qualified, f_since, f_qualified_since = found[version_id].get(_FACTS, (0, 0, 0, 0))
        counts[version_id] = (
            _Counts(conversations=f_all, qualified=f_qualified, replies=r_all, tokens=r_tokens),
            _Counts(
                conversations=f_since, qualified=f_qualified_since, replies=r_since, tokens=r_tokens_since
            ),
        )
    return counts


class _Median(Aggregate):
    """PostgreSQL's ordered-set median (the mean of the two middle values for an even count)."""

    function = "percentile_cont"
    template = "%(function)s(0.5) WITHIN GROUP (ORDER BY %(expressions)s)"
    output_field = FloatField()


def _middle_latencies(*, version_ids: Sequence[int]) -> tuple[dict[int, float], dict[int, float]]:
    """Median reply latency per version, all time and since activation, in one query.

    On PostgreSQL a grouped percentile_cont (one pass, ~9x faster than ranking every row on 200,000
    replies: bench/bench_prompt_figures.py). Elsewhere window functions rank each version's latencies
    (and, separately, those since its activation) in SQL; only the one or two middle rows come back.
    """
    if connection.vendor == "postgresql":
        since_activation = Q(
            prompt_version__activated_at__isnull=False, created_at__gte=F("prompt_version__activated_at")
        )
        grouped = (
            Message.objects.filter(
                prompt_version_id__in=version_ids, role=MessageRole.AGENT, latency_ms__isnull=False
            )
            .order_by()
            .values("prompt_version_id")
            .annotate(whole=_Median("latency_ms"), since=_Median("latency_ms", filter=since_activation))
            .values_list("prompt_version_id", "whole", "since")
        )
        rows = list(grouped)
        return (
            {version_id: whole for version_id, whole, _ in rows},
            {version_id: since for version_id, _, since in rows if since is not None},
        )
    since = Case(
        When(
            prompt_version__activated_at__isnull=False,
            created_at__gte=F("prompt_version__activated_at"),
            then=Value(True),
        ),
        default=Value(False),
        output_field=BooleanField(),
    )
    order = [F("latency_ms").asc(), F("id").asc()]
    whole = [F("prompt_version_id")]
    part = [F("prompt_version_id"), F("since")]
    ranked = (
        Message.objects.filter(
            prompt_version_id__in=version_ids, role=MessageRole.AGENT, latency_ms__isnull=False
        )
        .annotate(since=since)
        .annotate(
            position=Window(RowNumber(), partition_by=whole, order_by=order),
            size=Window(Count("id"), partition_by=whole),
            part_position=Window(RowNumber(), partition_by=part, order_by=order),
            part_size=Window(Count("id"), partition_by=part),
        )
    )
    # Positions (n+1)//2 to (n+2)//2: the middle row of an odd count, the two middle rows of an even one.
    middle = ranked.filter(
        Q(position__gte=(F("size") + 1) / 2, position__lte=(F("size") + 2) / 2)
        | Q(
            since=True,
            part_position__gte=(F("part_size") + 1) / 2,
            part_position__lte=(F("part_size") + 2) / 2,
        )
    ).values_list(
        "prompt_version_id", "latency_ms", "since", "position", "size", "part_position", "part_size"
    )
    whole_values: dict[int, list[int]] = defaultdict(list)
    since_values: dict[int, list[int]] = defaultdict(list)
    for version_id, latency, is_since, position, size, part_position, part_size in middle:
        if (size + 1) // 2 <= position <= (size + 2) // 2:
            whole_values[version_id].append(latency)
        if is_since and (part_size + 1) // 2 <= part_position <= (part_size + 2) // 2:
            since_values[version_id].append(latency)
    return (
        {version_id: sum(found) / len(found) for version_id, found in whole_values.items()},
        {version_id: sum(found) / len(found) for version_id, found in since_values.items()},
    )


def prompt_version_results(*, versions: Iterable[PromptVersion]) -> dict[int, VersionResults]:
    """Every figure of these versions from the fact rows: two queries however many versions there are."""
    versions = list(versions)
    ids = [v.pk for v in versions]
    if not ids:
        return {}
    counts = _counts(version_ids=ids)
    medians, medians_since = _middle_latencies(version_ids=ids)
    results = {}
    for v in versions:
        all_time, since_counts = counts[v.pk]
        since = None
        if v.activated_at is not None:
            since = Figures(
                conversations=since_counts.conversations,
                qualified=since_counts.qualified,
                replies=since_counts.replies,
                tokens=since_counts.tokens,
                median_latency_ms=medians_since.get(v.pk),
            )
        results[v.pk] = VersionResults(
            all_time=Figures(
                conversations=all_time.conversations,
                qualified=all_time.qualified,
                replies=all_time.replies,
                tokens=all_time.tokens,
                median_latency_ms=medians.get(v.pk),
            ),
            since_activation=since,
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
