"""The reply figures kept between page views (prompts.selectors._reply_tallies) stay exact.

Settled replies are tallied once and cached with a watermark; later views count only newer replies. These
tests compare every figure with a recount from the rows themselves after replies arrive in each part (the
settled part, the cached part, the tail newer than the settle time), and pin the queries: two for any
number of versions and replies.
"""

import random
import statistics
from datetime import timedelta

import pytest
from django.db.models import Q
from django.utils import timezone

from leads.models import Message, MessageRole
from prompts import selectors
from tests.factories import ConversationFactory

pytestmark = pytest.mark.django_db


def expected(version) -> dict:
    """Every reply figure of `version`, recounted in Python from its rows."""
    rows = list(
        Message.objects.filter(prompt_version=version, role=MessageRole.AGENT).values(
            "created_at", "latency_ms", "prompt_tokens", "completion_tokens", "model"
        )
    )
    version.refresh_from_db(fields=["activated_at"])
    since = [r for r in rows if version.activated_at and r["created_at"] >= version.activated_at]

    def figures(part):
        latencies = [r["latency_ms"] for r in part if r["latency_ms"] is not None]
        return (
            len(part),
            sum((r["prompt_tokens"] or 0) + (r["completion_tokens"] or 0) for r in part),
            statistics.median(latencies) if latencies else None,
        )

    by_model: dict[str, tuple[int, int]] = {}
    for r in rows:
        p, c = by_model.get(r["model"] or "", (0, 0))
        by_model[r["model"] or ""] = (p + (r["prompt_tokens"] or 0), c + (r["completion_tokens"] or 0))
    return {"all": figures(rows), "since": figures(since), "by_model": by_model}


def got(version) -> dict:
    version.refresh_from_db()
    results = selectors.prompt_version_results(versions=[version])[version.pk]

    def figures(f):
        return (f.replies, f.tokens, f.median_latency_ms)

    return {
        "all": figures(results.all_time),
        "since": figures(results.since_activation),
        "by_model": dict(results.tokens_by_model),
    }


def add_replies(reply, version, conversation, *, count, at, rng):
    for _ in range(count):
        message = reply(
            version=version,
            conversation=conversation,
            at=at(rng.randint(0, 3000)),
            latency_ms=rng.choice([None, rng.randint(100, 4000)]),
            prompt_tokens=rng.randint(0, 500),
            completion_tokens=rng.randint(0, 200),
        )
        Message.objects.filter(pk=message.pk).update(model=rng.choice(["gpt-4o-mini", "gpt-4o", ""]))


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_cached_tallies_match_a_recount_as_replies_arrive(versions, reply, ago, monkeypatch, seed):
    rng = random.Random(seed)
    v1 = versions[0]
    conversation = ConversationFactory()
    # Replies from well before and after v1's activation (it was activated "now" by the fixture).
    add_replies(reply, v1, conversation, count=40, at=lambda s: ago(minutes=10 + s // 60), rng=rng)
    assert got(v1) == expected(v1)  # first view: everything settled is tallied and cached

    # Replies inside the settle window are counted on every view but never cached...
    add_replies(
        reply, v1, conversation, count=7, at=lambda s: timezone.now() - timedelta(seconds=s % 50), rng=rng
    )
    assert got(v1) == expected(v1)
    assert got(v1) == expected(v1)  # ...so a second view does not count them twice

    # With no settle window every new reply is merged into the cached tally: the incremental path.
    monkeypatch.setattr(selectors, "FIGURES_SETTLE", timedelta(0))
    assert got(v1) == expected(v1)
    # (written now, as the agent writes them: created_at is the insert time, never behind the watermark)
    add_replies(reply, v1, conversation, count=9, at=lambda s: None, rng=rng)
    assert got(v1) == expected(v1)
    assert got(v1) == expected(v1)


def test_reactivating_a_version_splits_since_activation_again(versions, reply, ago):
    v1 = versions[0]
    conversation = ConversationFactory()
    for minutes in (30, 20, 10):
        reply(version=v1, conversation=conversation, at=ago(minutes=minutes), latency_ms=minutes * 10)
    assert got(v1) == expected(v1)
    type(v1).objects.filter(pk=v1.pk).update(activated_at=ago(minutes=25))
    assert got(v1)["since"] == (2, expected(v1)["since"][1], 150.0)
    assert got(v1) == expected(v1)


@pytest.mark.parametrize(
    "latencies",
    [[5], [5, 7], [1, 1, 9], [3, 1, 4, 1, 5, 9, 2, 6], [10, 20, 20, 20, 30, 1000]],
)
def test_the_histogram_median_is_percentile_cont(latencies):
    histogram: dict[int, int] = {}
    for value in latencies:
        histogram[value] = histogram.get(value, 0) + 1
    assert selectors._histogram_median(histogram) == statistics.median(latencies)


@pytest.mark.parametrize("replies", [3, 30])
def test_figures_take_two_queries_whatever_the_versions_and_replies(
    versions, reply, ago, django_assert_num_queries, replies
):
    conversation = ConversationFactory()
    for i in range(replies):
        reply(version=versions[i % 3], conversation=conversation, at=ago(minutes=i + 2), latency_ms=i)
    for _ in range(2):  # the first view fills the cache, the second reads it: two queries both times
        with django_assert_num_queries(2):
            results = selectors.prompt_version_results(versions=list(versions))
    assert sum(r.all_time.replies for r in results.values()) == replies
    assert Message.objects.filter(~Q(prompt_version=None)).count() == replies
