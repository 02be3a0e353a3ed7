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

from django.db.models import (
    Count,
    F,
    IntegerField,
    OuterRef,
    QuerySet,
    Subquery,
    Sum,
    Value,
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


def _count(queryset: QuerySet) -> Coalesce:
    return Coalesce(
        Subquery(queryset.values("prompt_version").annotate(n=Count("*")).values("n")[:1]),
        Value(0),
        output_field=IntegerField(),
    )


def _tokens(queryset: QuerySet) -> Coalesce:
    return Coalesce(
        Subquery(
            queryset.values("prompt_version")
            .annotate(n=Sum(Coalesce("prompt_tokens", 0) + Coalesce("completion_tokens", 0)))
            .values("n")[:1]
        ),
        Value(0),
        output_field=IntegerField(),
    )


def prompt_version_list() -> QuerySet[PromptVersion]:
    """Versions newest first, with their SQL figures annotated; the text itself is left out of the row."""
    facts = PromptVersionConversation.objects.filter(prompt_version=OuterRef("pk"))
    replies = Message.objects.filter(prompt_version=OuterRef("pk"), role=MessageRole.AGENT)
    since = OuterRef("activated_at")
    facts_since = facts.filter(last_reply_at__gte=since)
    replies_since = replies.filter(created_at__gte=since)
    return (
        PromptVersion.objects.select_related("author", "activated_by")
        .defer("content")
        .annotate(
            content_length=Length("content"),
            r_conversations=_count(facts),
            r_qualified=_count(facts.filter(qualified_at__isnull=False)),
            r_replies=_count(replies),
            r_tokens=_tokens(replies),
            s_conversations=_count(facts_since),
            # Qualified since activation counts only conversations the version also replied in since then,
            # so it can never exceed the conversations figure beside it.
            s_qualified=_count(facts_since.filter(qualified_at__gte=since)),
            s_replies=_count(replies_since),
            s_tokens=_tokens(replies_since),
        )
        .order_by("-version")
    )


def _middle_latencies(*, version_ids: Sequence[int], since_activation: bool) -> dict[int, float]:
    """Median reply latency per version in one query, with window functions that SQLite and PostgreSQL share.

    Each version's latencies are ranked in SQL and only the one or two middle rows come back.
    """
    queryset = Message.objects.filter(
        prompt_version_id__in=version_ids, role=MessageRole.AGENT, latency_ms__isnull=False
    )
    if since_activation:
        queryset = queryset.filter(
            prompt_version__activated_at__isnull=False, created_at__gte=F("prompt_version__activated_at")
        )
    partition = [F("prompt_version_id")]
    ranked = queryset.annotate(
        position=Window(RowNumber(), partition_by=partition, order_by=[F("latency_ms").asc(), F("id").asc()]),
        size=Window(Count("id"), partition_by=partition),
    )
    # Positions (n+1)//2 to (n+2)//2: the middle row of an odd count, the two middle rows of an even one.
    middle = ranked.filter(position__gte=(F("size") + 1) / 2, position__lte=(F("size") + 2) / 2).values_list(
        "prompt_version_id", "latency_ms"
    )
    values: dict[int, list[int]] = defaultdict(list)
    for version_id, latency in middle:
        values[version_id].append(latency)
    return {version_id: sum(found) / len(found) for version_id, found in values.items()}


def prompt_version_results(*, versions: Iterable[PromptVersion]) -> dict[int, VersionResults]:
    """Results for versions from `prompt_version_list()`; two more queries however many versions there are."""
    versions = list(versions)
    ids = [v.pk for v in versions]
    if not ids:
        return {}
    medians = _middle_latencies(version_ids=ids, since_activation=False)
    medians_since = _middle_latencies(version_ids=ids, since_activation=True)
    results = {}
    for v in versions:
        all_time = Figures(
            conversations=v.r_conversations,
            qualified=v.r_qualified,
            replies=v.r_replies,
            tokens=v.r_tokens,
            median_latency_ms=medians.get(v.pk),
        )
        since = None
        if v.activated_at is not None:
            since = Figures(
                conversations=v.s_conversations,
                qualified=v.s_qualified,
                replies=v.s_replies,
                tokens=v.s_tokens,
                median_latency_ms=medians_since.get(v.pk),
            )
        results[v.pk] = VersionResults(all_time=all_time, since_activation=since)
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
