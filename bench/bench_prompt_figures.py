"""Per-version figures: prompts.selectors.prompt_version_results against the old per-version recount.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/h1_bench \\
        .venv/bin/python bench/bench_prompt_figures.py [--messages 300000] [--versions 20] [--runs 5]

Fills a scratch database (migrated here; its leads, messages and prompt versions are replaced) with
`--messages` agent replies spread over `--versions` versions and one fact row per (version, conversation),
then times, alternating runs so both see the same cache and load:

* baseline: the figures as prompt_version_list() annotated them before (eight correlated subqueries per
  version: conversations, qualified, replies, tokens, each overall and since activation), and
* new: prompt_version_results (one grouped query over the conversation facts, one over the replies
  newer than the cached tally's watermark; latency medians from exact histograms), which the page, the
  API, the admin and the cards all read; timed cold (cache cleared) and warm (the next call).

Both include the two median queries' cost only in "new" (the baseline timed only its counts), so the
ratio is conservative. Prints the medians and the ratio.
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

from django.core.cache import cache  # noqa: E402
from django.core.management import call_command  # noqa: E402
from django.db import connection  # noqa: E402
from django.db.models import Count, IntegerField, OuterRef, QuerySet, Subquery, Sum, Value  # noqa: E402
from django.db.models.functions import Coalesce  # noqa: E402
from django.utils import timezone  # noqa: E402

from leads.models import Conversation, Lead, Message, MessageRole  # noqa: E402
from prompts.models import PromptVersion, PromptVersionConversation  # noqa: E402
from prompts.selectors import prompt_version_list, prompt_version_results  # noqa: E402


def _count(queryset: QuerySet) -> Coalesce:
    return Coalesce(
        Subquery(queryset.values("prompt_version").annotate(n=Count("*")).values("n")[:1]),
        Value(0),
        output_field=IntegerField(),
    )


def _tokens(queryset: QuerySet) -> Coalesce:
    tokens = Coalesce("prompt_tokens", 0) + Coalesce("completion_tokens", 0)
    return Coalesce(
        Subquery(queryset.values("prompt_version").annotate(n=Sum(tokens)).values("n")[:1]),
        Value(0),
        output_field=IntegerField(),
    )


def baseline() -> list[tuple]:
    """The old prompt_version_list() figures: correlated subqueries recounted per version."""
    facts = PromptVersionConversation.objects.filter(prompt_version=OuterRef("pk"))
    replies = Message.objects.filter(prompt_version=OuterRef("pk"), role=MessageRole.AGENT)
    since = OuterRef("activated_at")
    return list(
        PromptVersion.objects.annotate(
            r_conversations=_count(facts),
            r_qualified=_count(facts.filter(qualified_at__isnull=False)),
            r_replies=_count(replies),
            r_tokens=_tokens(replies),
            s_conversations=_count(facts.filter(last_reply_at__gte=since)),
            s_qualified=_count(facts.filter(last_reply_at__gte=since, qualified_at__gte=since)),
            s_replies=_count(replies.filter(created_at__gte=since)),
            s_tokens=_tokens(replies.filter(created_at__gte=since)),
        ).values_list("pk", "r_conversations", "r_qualified", "r_replies", "r_tokens", "s_replies")
    )


def new() -> dict:
    return prompt_version_results(versions=list(prompt_version_list()))


def fill(*, messages: int, versions: int) -> None:
    if connection.vendor != "postgresql":
        raise SystemExit("Run this against PostgreSQL (DATABASE_URL=postgres://...).")
    call_command("migrate", verbosity=0)
    per_conversation = 10
    now = timezone.now()
    with connection.cursor() as cursor:
        cursor.execute("TRUNCATE prompt_version_conversations, messages, conversations, leads CASCADE")
    PromptVersion.objects.all().delete()
    made = PromptVersion.objects.bulk_create(
        PromptVersion(
            version=v,
            content=f"Prompt {v}",
            is_active=v == versions,
            activated_at=now - timedelta(days=versions - v),
        )
        for v in range(1, versions + 1)
    )
    leads = Lead.objects.bulk_create(
        (
            Lead(manychat_subscriber_id=f"b{i}", channel="instagram")
            for i in range(messages // per_conversation)
        ),
        batch_size=5000,
    )
    conversations = Conversation.objects.bulk_create(
        (Conversation(lead=lead, channel="instagram") for lead in leads), batch_size=5000
    )

    def rows():
        for conversation in conversations:
            version = made[conversation.pk % versions]
            for n in range(per_conversation):
                yield Message(
                    conversation=conversation,
                    role=MessageRole.AGENT,
                    text="reply",
                    prompt_version=version,
                    delivery_status="returned",
                    model="bench",
                    prompt_tokens=1200,
                    completion_tokens=80,
                    latency_ms=500 + (n * 37) % 3000,
                )

    Message.objects.bulk_create(rows(), batch_size=5000)
    with connection.cursor() as cursor:
        # Spread the replies over 90 days, then one fact row per (version, conversation).
        cursor.execute("UPDATE messages SET created_at = now() - ((id * 7) % 90) * interval '1 day'")
        cursor.execute(
            "INSERT INTO prompt_version_conversations (prompt_version_id, conversation_id, first_reply_at,"
            " last_reply_at, qualified_at)"
            " SELECT prompt_version_id, conversation_id, min(created_at), max(created_at),"
            " CASE WHEN conversation_id % 4 = 0 THEN max(created_at) END"
            " FROM messages WHERE role = 'agent' GROUP BY prompt_version_id, conversation_id"
        )
        cursor.execute("ANALYZE")


def timed(function) -> float:
    started = time.perf_counter()
    function()
    return (time.perf_counter() - started) * 1000


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--messages", type=int, default=300_000)
    parser.add_argument("--versions", type=int, default=20)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--no-fill", action="store_true", help="Reuse the data of a previous run.")
    args = parser.parse_args()
    if not args.no_fill:
        started = time.perf_counter()
        fill(messages=args.messages, versions=args.versions)
        print(
            f"filled {args.messages:,} agent replies over {args.versions} versions in "
            f"{time.perf_counter() - started:.1f} s"
        )
    # Same answers first: the new selectors count what the old annotations counted.
    old_rows = {pk: (conv, qual, rep, tok) for pk, conv, qual, rep, tok, _ in baseline()}
    results = new()
    for pk, (conv, qual, rep, tok) in old_rows.items():
        figures = results[pk].all_time
        assert (figures.conversations, figures.qualified, figures.replies, figures.tokens) == (
            conv,
            qual,
            rep,
            tok,
        )
    old_ms, new_ms, warm_ms = [], [], []
    for _ in range(args.runs):
        old_ms.append(timed(baseline))
        cache.clear()  # cold: every reply tallied from the rows, as on the first view after a deploy
        new_ms.append(timed(new))
        warm_ms.append(timed(new))  # warm: the settled tally from the cache, newer replies counted
    old_median, new_median = statistics.median(old_ms), statistics.median(new_ms)
    warm_median = statistics.median(warm_ms)
    print(f"baseline (correlated recount per version): median {old_median:,.0f} ms over {args.runs} runs")
    print(f"prompt_version_results, cold cache: median {new_median:,.0f} ms over {args.runs} runs")
    print(f"prompt_version_results, warm cache: median {warm_median:,.1f} ms over {args.runs} runs")
    ratios = f"baseline/cold {old_median / new_median:.1f}x, baseline/warm {old_median / warm_median:.0f}x"
    print(f"ratio {ratios}; load average {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
