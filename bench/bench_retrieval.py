"""Time the agent's example selection (training.retrieval) beside the method it replaced, in one run.

    # full-text ranking among 100k approved examples (PostgreSQL)
    DATABASE_URL=postgres://postgres@127.0.0.1:5432/h8_bench_fts .venv/bin/python bench/bench_retrieval.py
    # embedding similarity among 10k approved examples (the fake OpenAI server's embeddings endpoint)
    DATABASE_URL=postgres://postgres@127.0.0.1:5432/h8_bench_emb .venv/bin/python bench/bench_retrieval.py \\
        --examples 10000 --embeddings [--dims 1536]

The database is migrated and filled with approved examples on the first run (kept for the next runs).
Each run alternates the two methods over the same lead messages, so both see the same cache and load:

* today's method (before issue #18): word overlap over the 200 most recently approved, one query;
* retrieval: `training.selectors.training_examples_for_prompt` as the agent calls it (full text, or with
  --embeddings: the query's embedding over HTTP, the vector matrix's stamp check, numpy, one read).

With --embeddings each selection is timed with a message never embedded before (the query's vector is
cached per message, so a repeated one would cost nothing): the embeddings call is part of the figure and
its own median is printed beside it; the same selection with the message's vector cached is printed too,
and the previous embedding method (PREVIOUS below: an aggregate query on the vectors every 2 s and the query
embedded on every call) is timed in the same run.

Prints medians and p95 in milliseconds, the ratio, and whether the relevant example was found (a planted
old example that only retrieval can reach). Targets (2-core machine): full text median under 30 ms on
100k; embeddings median under 50 ms on 10k.
"""

from __future__ import annotations

import argparse
import os
import random
import re
import statistics
import sys
import time
from datetime import timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
os.environ.setdefault("DJANGO_DEBUG", "1")  # a local tool: the development settings

import logging  # noqa: E402

import django  # noqa: E402
import numpy as np  # noqa: E402

django.setup()
logging.getLogger("httpx").setLevel(logging.WARNING)  # one line per embeddings call otherwise

from django.conf import settings  # noqa: E402
from django.core.management import call_command  # noqa: E402
from django.db import connection  # noqa: E402
from django.db.models import Count, Max  # noqa: E402
from django.utils import timezone  # noqa: E402

from bench.dataset.words import AGENT_LINES, CITIES, LEAD_LINES  # noqa: E402
from training.models import ExampleStatus, ExampleType, TrainingExample  # noqa: E402
from training.retrieval import embeddings, vectors  # noqa: E402
from training.retrieval.models import ExampleEmbedding  # noqa: E402
from training.retrieval.selectors import Ranked, _rows_for_ranked, vector_cache_clear  # noqa: E402
from training.review.fields import DECIDED_AT  # noqa: E402
from training.selectors import training_examples_for_prompt  # noqa: E402

LIMIT = 12
PLANTED = "Could my payment be refunded if the onboarding disappoints?"
PLANTED_QUERY = "are refunds possible?"
_WORD = re.compile(r"[^\W_]{3,}")
_TAGS = re.compile(r"\{\w+\}")


def vocabulary(rng: random.Random) -> list[str]:
    words = {w.lower() for line in LEAD_LINES + AGENT_LINES for w in _WORD.findall(_TAGS.sub("", line))}
    words |= {c.lower() for c in CITIES if isinstance(c, str)}
    base = sorted(words)
    # Inflected and compound variants: a vocabulary of a few thousand words, like real DMs.
    extra = {f"{a}{b}" for a in base[:60] for b in ("s", "ing", "ed", "er")}
    extra |= {
        f"{a}{b}" for a, b in zip(rng.sample(base, len(base)), rng.sample(base, len(base)), strict=True)
    }
    return base + sorted(extra)


def lead_line(rng: random.Random, vocab: list[str]) -> str:
    line = rng.choice(LEAD_LINES).replace("{city}", rng.choice(CITIES)).replace("{n}", str(rng.randint(2, 9)))
    line = line.replace("{month}", "March")
    return f"{line} {' '.join(rng.sample(vocab, rng.randint(2, 5)))}".replace("refund", "return")


def seed(*, count: int, rng: random.Random) -> None:
    approved = TrainingExample.objects.filter(status=ExampleStatus.APPROVED)
    if approved.count() == count and approved.filter(user_message=PLANTED).exists():
        return
    print(f"seeding {count} approved examples ...", flush=True)
    TrainingExample.objects.all().delete()
    vocab = vocabulary(rng)
    now = timezone.now()
    TrainingExample.objects.create(
        user_message=PLANTED,
        ai_response="Yes: a full refund within 14 days.",
        feedback="Policy answer.",
        example_type=ExampleType.GOOD,
        status=ExampleStatus.APPROVED,
        **{DECIDED_AT: now - timedelta(days=900)},
    )
    batch = []
    for i in range(count - 1):
        kind = rng.choice((ExampleType.GOOD, ExampleType.GOOD, ExampleType.BAD, ExampleType.CORRECTION))
        batch.append(
            TrainingExample(
                user_message=lead_line(rng, vocab),
                ai_response=rng.choice(AGENT_LINES).replace("{name}", "Ana").replace("{city}", "Lima"),
                expected_response="Plans start at 49 a month; shall I send the details?"
                if kind == ExampleType.CORRECTION
                else "",
                feedback="Seeded for the retrieval benchmark.",
                example_type=kind,
                status=ExampleStatus.APPROVED,
                **{DECIDED_AT: now - timedelta(minutes=i)},
            )
        )
        if len(batch) == 5000:
            TrainingExample.objects.bulk_create(batch)
            batch = []
    TrainingExample.objects.bulk_create(batch)
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE training_examples")


def baseline(*, lead_message: str, limit: int) -> list[dict[str, str]]:
    """training_examples_for_prompt as it was before issue #18 (kept verbatim for the comparison)."""
    rows = list(
        TrainingExample.objects.filter(status=ExampleStatus.APPROVED)
        .order_by(f"-{DECIDED_AT}", "-id")
        .values("id", "example_type", "user_message", "ai_response", "expected_response", "feedback")[:200]
    )
    query = {w.lower() for w in _WORD.findall(lead_message)}
    scored = sorted(
        enumerate(rows),
        key=lambda pair: (-len(query & {w.lower() for w in _WORD.findall(pair[1]["user_message"])}), pair[0]),
    )
    chosen, used = [], 0
    for _, row in scored:
        item = {
            k: (row[k] or "")[:500] for k in ("user_message", "ai_response", "expected_response", "feedback")
        }
        size = sum(len(v) for v in item.values())
        if used + size > 6000:
            continue
        chosen.append({"id": row["id"], **item})
        used += size
        if len(chosen) >= limit:
            break
    return chosen


class Previous:
    """The embedding ranking before the version stamp (kept here for the comparison): every 2 s a COUNT/MAX
    query on the vectors, the query embedded on every call, a stable argsort over the over-fetch."""

    def __init__(self) -> None:
        self.checked_at = 0.0
        self.signature = None
        self.ids = np.zeros(0, dtype=np.int64)
        self.matrix = np.zeros((0, 0), dtype=np.float32)

    def current(self) -> tuple[np.ndarray, np.ndarray]:
        now = time.monotonic()
        if now - self.checked_at < 2.0:
            return self.ids, self.matrix
        rows = ExampleEmbedding.objects.filter(model=embeddings.embeddings_model())
        stats = rows.aggregate(count=Count("example_id"), newest=Max("created_at"))
        self.checked_at = now
        signature = (stats["count"], stats["newest"])
        if signature != self.signature:
            pairs = list(rows.values_list("example_id", "vector").iterator(chunk_size=2000))
            self.ids = np.asarray([p[0] for p in pairs], dtype=np.int64)
            self.matrix = np.vstack([embeddings.vector_from_bytes(p[1]) for p in pairs])
            self.signature = signature
        return self.ids, self.matrix

    def select(self, *, lead_message: str, limit: int) -> list:
        ids, matrix = self.current()
        query = embeddings.embed_texts(texts=[lead_message], for_query=True)[0]
        scores = matrix @ query
        take = min(len(scores), limit * 4)
        top = np.argpartition(-scores, take - 1)[:take]
        top = top[np.argsort(-scores[top], kind="stable")]
        ranked = [Ranked(int(ids[i]), round(float(scores[i]), 4), "embedding") for i in top]
        return _rows_for_ranked(ranked=ranked, limit=limit, exclude_ids=())[:limit]


def timed(fn, message: str) -> tuple[float, list]:
    started = time.perf_counter()
    result = fn(lead_message=message, limit=LIMIT)
    return (time.perf_counter() - started) * 1000, result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--examples", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=200)
    parser.add_argument("--embeddings", action="store_true")
    parser.add_argument("--dims", type=int, default=1536)
    args = parser.parse_args()
    if connection.vendor != "postgresql":
        sys.exit("Run against PostgreSQL: set DATABASE_URL (see the docstring).")
    call_command("migrate", verbosity=0)
    rng = random.Random(18)
    seed(count=args.examples, rng=rng)
    fake = None
    if args.embeddings:
        from tests.fakes.fake_openai import FakeOpenAI

        fake = FakeOpenAI().start()
        fake.embedding_dims = args.dims
        fake.embedding_synonyms.update({"refunds": "refund", "refunded": "refund", "return": "refund"})
        settings.OPENAI_API_KEY = "sk-bench"
        settings.OPENAI_BASE_URL = fake.base_url
        settings.OPENAI_EMBEDDINGS_MODEL = "fake-embedding"
        missing = TrainingExample.objects.exclude(embedding__model="fake-embedding").count()
        if missing:
            from training.retrieval.tasks import embed_missing

            print(f"embedding {missing} examples through the fake server ...", flush=True)
            started = time.perf_counter()
            while embed_missing.apply().get():
                pass
            print(f"  {time.perf_counter() - started:.1f} s", flush=True)
        vector_cache_clear()
        cold, _ = timed(training_examples_for_prompt, "warm up the vector cache")
        vectors.vectors_changed()  # a stamp bump: what an approval costs the next selection
        refresh, _ = timed(training_examples_for_prompt, "after an approval")
        count = ExampleEmbedding.objects.count()
        print(
            f"vector matrix cold load: {cold:.1f} ms ({count} vectors, {args.dims} dims); after a stamp "
            f"bump (an approval): {refresh:.1f} ms; load {load()}"
        )
    vocab = vocabulary(rng)
    messages = [lead_line(rng, vocab) for _ in range(49)] + [PLANTED_QUERY]
    for message in messages[:5]:  # warm both paths
        baseline(lead_message=message, limit=LIMIT)
        training_examples_for_prompt(lead_message=message, limit=LIMIT)
    old_ms, new_ms, prev_ms, embed_ms, warm_ms = [], [], [], [], []
    previous = Previous() if args.embeddings else None
    if previous is not None:
        previous.select(lead_message="warm up the previous method", limit=LIMIT)
    for run in range(args.runs):
        message = messages[run % len(messages)]
        if args.embeddings:
            message = f"{lead_line(rng, vocab)} {run}"  # never embedded before: the call is in the figure
        elapsed, _ = timed(baseline, message)
        old_ms.append(elapsed)
        elapsed, _ = timed(training_examples_for_prompt, message)
        new_ms.append(elapsed)
        if previous is not None:
            elapsed, _ = timed(previous.select, f"{message}.")
            prev_ms.append(elapsed)
            elapsed, _ = timed(training_examples_for_prompt, message)  # the message's vector is cached now
            warm_ms.append(elapsed)
            started = time.perf_counter()
            embeddings.embed_texts(texts=[f"{message}!"], for_query=True)
            embed_ms.append((time.perf_counter() - started) * 1000)
    planted = TrainingExample.objects.get(user_message=PLANTED).pk
    found_new = planted in [
        i["id"] for i in training_examples_for_prompt(lead_message=PLANTED_QUERY, limit=LIMIT)
    ]
    found_old = planted in [i["id"] for i in baseline(lead_message=PLANTED_QUERY, limit=LIMIT)]
    if fake is not None:
        fake.stop()

    def p95(values: list[float]) -> float:
        return sorted(values)[int(len(values) * 0.95) - 1]

    mode = "embeddings" if args.embeddings else "full text"
    target = 50.0 if args.embeddings else 30.0
    old_median, new_median = statistics.median(old_ms), statistics.median(new_ms)
    print(f"{args.examples} approved examples, {args.runs} selections of {LIMIT}, {mode}, load {load()}")
    print(
        f"  today's method (200 newest, word overlap): median {old_median:.2f} ms, p95 {p95(old_ms):.2f} ms"
    )
    if args.embeddings:
        prev_median = statistics.median(prev_ms)
        print(
            f"  previous embedding method (2 s COUNT/MAX check, query embedded each call): median "
            f"{prev_median:.2f} ms, p95 {p95(prev_ms):.2f} ms"
        )
        print(
            f"  retrieval, a message never embedded before:  median {new_median:.2f} ms, "
            f"p95 {p95(new_ms):.2f} ms"
        )
        embed_median = statistics.median(embed_ms)
        print(
            f"    of which the embeddings call alone (HTTP to the server): median {embed_median:.2f} ms "
            f"({embed_median / new_median:.0%} of the selection)"
        )
        print(
            f"  retrieval, the message's vector cached:      median {statistics.median(warm_ms):.2f} ms, "
            f"p95 {p95(warm_ms):.2f} ms"
        )
        print(f"  ratio retrieval / previous embedding method: {new_median / prev_median:.2f}")
    else:
        print(f"  retrieval ({mode}):                   median {new_median:.2f} ms, p95 {p95(new_ms):.2f} ms")
    print(f"  ratio retrieval / today: {new_median / old_median:.2f}")
    print(f"  planted old example found: retrieval {found_new}, today's method {found_old}")
    print(f"  target median < {target:.0f} ms: {'met' if new_median < target else 'MISSED'}")


def load() -> str:
    return " ".join(f"{value:.1f}" for value in os.getloadavg())


if __name__ == "__main__":
    main()
