"""Which approved examples the agent sees: the most relevant among all of them, not the 200 newest.

Ranking, best available first:

1. embedding similarity (OPENAI_EMBEDDINGS_MODEL set): the lead's message is embedded on the same
   OpenAI-compatible server (cached per message) and compared in numpy with every live example's stored
   vector (one per-process matrix, refreshed when the shared cache's version stamp moves: see
   training/retrieval/vectors.py); above EMBEDDING_SCAN_MAX vectors, PostgreSQL's full-text ranking picks
   the candidates first;
2. PostgreSQL full-text ranking (`ts_rank_cd` over a stored tsvector with a GIN index, migration 0004):
   English stems, with the `simple` configuration as the fallback for a message made only of words the
   English configuration drops (another language's short words);
3. on SQLite, word-stem overlap over the TRAINING_RETRIEVAL_SCAN_LIMIT most recently approved.

Slots left over go to the most recently approved examples, as before. Retired, pending and rejected
examples are never returned: the final read filters on the live status, whatever a cache holds.
"""

import re
import time
from collections.abc import Collection
from dataclasses import dataclass
from typing import Any

import numpy as np
from django.conf import settings
from django.db import connection
from django.db.models import QuerySet

from training.models import ExampleStatus, TrainingExample
from training.retrieval import embeddings, vectors
from training.retrieval.models import RetrievalMethod
from training.review.fields import DECIDED_AT

SEARCH_CONFIG = "english"  # must match the generated column in training/migrations/0004
MAX_QUERY_WORDS = 32
EMBEDDING_SCAN_MAX = 50_000
FULL_TEXT_CANDIDATES = 2_000
# Below this cosine an embedding match is no better than an unrelated recent example.
EMBEDDING_MIN_SCORE = 0.2

_WORD = re.compile(r"[^\W_]{2,}")
_OLD_WORD = re.compile(r"[^\W_]{3,}")
_SUFFIXES = (
    "ational",
    "ations",
    "ation",
    "ments",
    "ment",
    "ingly",
    "ings",
    "ing",
    "edly",
    "ies",
    "ied",
    "ed",
    "es",
    "ly",
    "s",
)
_STOPWORDS = frozenset(
    [
        "a",
        "an",
        "and",
        "are",
        "as",
        "at",
        "be",
        "but",
        "by",
        "can",
        "do",
        "does",
        "for",
        "from",
        "has",
        "have",
        "how",
        "i",
        "if",
        "in",
        "is",
        "it",
        "its",
        "me",
        "my",
        "no",
        "not",
        "of",
        "on",
        "or",
        "our",
        "so",
        "that",
        "the",
        "their",
        "them",
        "then",
        "there",
        "these",
        "they",
        "this",
        "to",
        "was",
        "we",
        "what",
        "when",
        "where",
        "which",
        "who",
        "why",
        "will",
        "with",
        "you",
        "your",
    ]
)


@dataclass(frozen=True)
class Ranked:
    example_id: int
    score: float
    method: str


def live_examples() -> QuerySet[TrainingExample]:
    """What the agent may be shown: approved and not retired."""
    return TrainingExample.objects.filter(status=ExampleStatus.APPROVED, retired_at__isnull=True)


def words(text: str) -> list[str]:
    seen: dict[str, None] = {}
    for word in _WORD.findall((text or "").lower()):
        seen.setdefault(word, None)
    return list(seen)[:MAX_QUERY_WORDS]


def stem(word: str) -> str:
    """A light English suffix stripper: enough for the SQLite fallback to match refund/refunds/refunded."""
    stripped = ""
    for suffix in _SUFFIXES:
        if word.endswith(suffix) and len(word) - len(suffix) >= 3:
            word = word[: -len(suffix)]
            stripped = suffix
            if suffix == "ies" or suffix == "ied":
                word += "y"
            break
    doubled = len(word) > 3 and word[-1] == word[-2] and word[-1] not in "aeiousl"
    if stripped in ("ing", "ings", "ingly", "ed", "edly") and (doubled or word.endswith("ll")):
        word = word[:-1]  # cancelling -> cancel, stopped -> stop; "call" and "full" stay
    return word


def stems(text: str) -> set[str]:
    return {stem(word) for word in words(text) if word not in _STOPWORDS}


# --- Full text (PostgreSQL) ------------------------------------------------------------------------------


def _is_postgres() -> bool:
    return connection.vendor == "postgresql"


def rank_full_text(*, text: str, limit: int, exclude_ids: Collection[int] = ()) -> list[Ranked]:
    if not words(text) or limit <= 0:
        return []
    with connection.cursor() as cursor:
        cursor.execute(
            _FULL_TEXT_RANK_SQL, _full_text_params(text=text, exclude_ids=exclude_ids, ranked=limit)
        )
        return [Ranked(row[0], float(row[1]), RetrievalMethod.FULL_TEXT) for row in cursor.fetchall()]


# --- Word stems (SQLite fallback) ---------------------------------------------------------------------


def rank_word_stems(*, text: str, limit: int, exclude_ids: Collection[int] = ()) -> list[Ranked]:
    query = stems(text)
    if not query or limit <= 0:
        return []
    rows = (
        live_examples()
        .exclude(pk__in=list(exclude_ids))
        .order_by(f"-{DECIDED_AT}", "-id")
        .values_list("id", "user_message")[: settings.TRAINING_RETRIEVAL_SCAN_LIMIT]
    )
    scored = []
    for position, (example_id, user_message) in enumerate(rows):
        overlap = len(query & stems(user_message))
        if overlap:
            scored.append((-overlap, position, example_id, overlap / len(query)))
    scored.sort()
    return [Ranked(row[2], round(row[3], 4), RetrievalMethod.WORDS) for row in scored[:limit]]


# --- Embeddings -------------------------------------------------------------------------------------------


def vector_cache_clear() -> None:
    vectors.caches_clear()


def rank_embeddings(
    *, text: str, limit: int, exclude_ids: Collection[int] = (), query_vector: np.ndarray | None = None
) -> list[Ranked]:
    """Cosine similarity with every live example's vector: one matrix-vector product and an argpartition.

    Raises embeddings.EmbeddingError when the query cannot be embedded (the caller falls back)."""
    ids, matrix = vectors.vector_matrix().current(model=embeddings.embeddings_model())
    if not len(ids) or limit <= 0:
        return []
    if query_vector is None:
        query_vector = vectors.query_vector(text=text, dims=matrix.shape[1])
    if query_vector.shape[0] != matrix.shape[1]:
        return []
    if len(ids) > EMBEDDING_SCAN_MAX and _is_postgres():
        candidates = {r.example_id for r in rank_full_text(text=text, limit=FULL_TEXT_CANDIDATES)}
        mask = np.isin(ids, np.fromiter(candidates, dtype=np.int64, count=len(candidates)))
        ids, matrix = ids[mask], matrix[mask]
        if not len(ids):
            return []
    # einsum's own single-threaded loop, not BLAS: on a busy 2-core host multi-threaded BLAS spends more
    # time waiting for its threads than multiplying (10k x 1,536: 20 ms vs 7 ms measured under load).
    scores = np.einsum("ij,j->i", matrix, np.asarray(query_vector, dtype=np.float32))
    excluded = set(exclude_ids)
    # Over-fetch: a few top rows may be excluded, or no longer approved since the last refresh.
    take = min(len(scores), max(limit * 4, limit + len(excluded)))
    top = np.argpartition(-scores, take - 1)[:take] if take < len(scores) else np.arange(len(scores))
    top = top[np.lexsort((-ids[top], -scores[top]))]  # best first; ties: the newest id first
    return [
        Ranked(int(ids[i]), round(float(scores[i]), 4), RetrievalMethod.EMBEDDING)
        for i in top
        if int(ids[i]) not in excluded and scores[i] >= EMBEDDING_MIN_SCORE
    ]


# --- Choosing -------------------------------------------------------------------------------------------


def examples_rank(*, text: str, limit: int, exclude_ids: Collection[int] = ()) -> list[Ranked]:
    """The best `limit` live examples for a lead's message (ranked ids, scores and methods), best first."""
    ranked: list[Ranked] = []
    if embeddings.embeddings_enabled():
        try:
            ranked = rank_embeddings(text=text, limit=limit, exclude_ids=exclude_ids)
        except embeddings.EmbeddingError:
            ranked = []
    if not ranked:
        if _is_postgres():
            ranked = rank_full_text(text=text, limit=limit * 2, exclude_ids=exclude_ids)
        else:
            ranked = rank_word_stems(text=text, limit=limit * 2, exclude_ids=exclude_ids)
    return ranked


_FIELDS = ("id", "example_type", "user_message", "ai_response", "expected_response", "feedback")


def _rows_for_ranked(
    *, ranked: list[Ranked], limit: int, exclude_ids: Collection[int]
) -> list[tuple[Ranked, dict[str, Any]]]:
    """The ranked rows (by primary key), then the most recent ones only if slots are left."""
    ranked = ranked[: limit * 2]  # room for a few retired since the cache was filled
    ranked_ids = [r.example_id for r in ranked]
    by_id = {row["id"]: row for row in live_examples().filter(pk__in=ranked_ids).values(*_FIELDS)}
    order = [(r, by_id[r.example_id]) for r in ranked if r.example_id in by_id]
    if len(order) < limit:
        recent = (
            live_examples()
            .exclude(pk__in=[*exclude_ids, *by_id])
            .order_by(f"-{DECIDED_AT}", "-id")
            .values(*_FIELDS)[: limit - len(order)]
        )
        order.extend((Ranked(row["id"], 0.0, RetrievalMethod.RECENT), row) for row in recent)
    return order


_QUERY_CTE = (
    "lex AS (SELECT DISTINCT unnest(tsvector_to_array(to_tsvector(%(config)s::regconfig, %(text)s))) AS w), "
    "keep AS (SELECT w FROM lex WHERE w <> ALL(%(common)s::text[])), "
    "q AS (SELECT CASE WHEN EXISTS (SELECT 1 FROM keep) "
    "THEN (SELECT string_agg(quote_literal(w), ' | ')::tsquery FROM keep) "
    "WHEN EXISTS (SELECT 1 FROM lex) THEN (SELECT string_agg(quote_literal(w), ' | ')::tsquery FROM lex) "
    "ELSE to_tsquery('simple', %(simple)s) END AS query), "
    "cand AS (SELECT e.id, e.search_vector, e.approved_at FROM training_examples e, q "
    "WHERE e.status = 'approved' AND e.retired_at IS NULL AND e.search_vector @@ q.query "
    "AND NOT (e.id = ANY(%(exclude)s)) LIMIT %(candidates)s), "
    "ranked AS (SELECT c.id, ts_rank_cd(c.search_vector, q.query) AS score FROM cand c, q "
    "ORDER BY score DESC, c.approved_at DESC, c.id DESC LIMIT %(ranked)s)"
)
# Constant fragments only; every value is a bound parameter.
_RECENT_AND_ROWS = (
    ", recent AS (SELECT e.id FROM training_examples e WHERE e.status = 'approved' AND e.retired_at IS NULL "
    "AND NOT (e.id = ANY(%(exclude)s)) ORDER BY e.approved_at DESC, e.id DESC LIMIT %(limit)s) "
    "SELECT e.id, e.example_type, e.user_message, e.ai_response, e.expected_response, e.feedback, r.score "
    "FROM training_examples e LEFT JOIN ranked r ON r.id = e.id "
    "WHERE e.id IN (SELECT id FROM ranked UNION ALL SELECT id FROM recent) "
    "ORDER BY r.score DESC NULLS LAST, e.approved_at DESC, e.id DESC"
)
_FULL_TEXT_ROWS_SQL = "WITH " + _QUERY_CTE + _RECENT_AND_ROWS  # noqa: S608
_FULL_TEXT_RANK_SQL = "WITH " + _QUERY_CTE + " SELECT id, score FROM ranked"  # noqa: S608
# A lexeme in more than this share of the approved examples says little about relevance.
COMMON_LEXEME_SHARE = 0.01
FULL_TEXT_MAX_CANDIDATES = 1000
_COMMON_TTL_SECONDS = 600
_common_cache: dict[str, Any] = {"at": 0.0, "lexemes": []}


def _common_lexemes() -> list[str]:
    """Lexemes above COMMON_LEXEME_SHARE, from pg_stats (ANALYZE keeps them fresh), cached per process."""
    now = time.monotonic()
    if now - _common_cache["at"] < _COMMON_TTL_SECONDS:
        return _common_cache["lexemes"]
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT e.w FROM pg_stats s, unnest(s.most_common_elems::text::text[]) WITH ORDINALITY e(w, n), "
            "unnest(s.most_common_elem_freqs) WITH ORDINALITY f(freq, m) "
            "WHERE s.tablename = 'training_examples' AND s.attname = 'search_vector' AND e.n = f.m "
            "AND f.freq >= %s",
            [COMMON_LEXEME_SHARE],
        )
        lexemes = [row[0] for row in cursor.fetchall()]
    _common_cache.update(at=now, lexemes=lexemes)
    return lexemes


def common_lexemes_clear() -> None:
    _common_cache.update(at=0.0, lexemes=[])


def _full_text_params(
    *, text: str, exclude_ids: Collection[int], ranked: int, limit: int = 0
) -> dict[str, Any]:
    terms = words(text)
    return {
        "config": SEARCH_CONFIG,
        "text": " ".join(terms),
        "simple": " | ".join(terms),
        "common": _common_lexemes(),
        "exclude": list(exclude_ids),
        "candidates": FULL_TEXT_MAX_CANDIDATES,
        "ranked": ranked if terms else 0,
        "limit": limit,
    }


def _rows_full_text(
    *, text: str, limit: int, exclude_ids: Collection[int]
) -> list[tuple[Ranked, dict[str, Any]]]:
    """PostgreSQL: the full-text ranking and the most recent rows, with their fields, in one statement."""
    params = _full_text_params(text=text, exclude_ids=exclude_ids, ranked=limit * 2, limit=limit)
    with connection.cursor() as cursor:
        cursor.execute(_FULL_TEXT_ROWS_SQL, params)
        rows = cursor.fetchall()
    order = []
    for row in rows:
        item = dict(zip(_FIELDS, row[:6], strict=True))
        score = row[6]
        method = RetrievalMethod.FULL_TEXT if score is not None else RetrievalMethod.RECENT
        order.append((Ranked(row[0], round(float(score or 0.0), 4), method), item))
    return order


def _rows_word_stems(
    *, text: str, limit: int, exclude_ids: Collection[int]
) -> list[tuple[Ranked, dict[str, Any]]]:
    """SQLite: the most recently approved (bounded scan), ranked by shared word stems, in one query."""
    query = stems(text)
    rows = list(
        live_examples()
        .exclude(pk__in=list(exclude_ids))
        .order_by(f"-{DECIDED_AT}", "-id")
        .values(*_FIELDS)[: settings.TRAINING_RETRIEVAL_SCAN_LIMIT]
    )
    scored = []
    if query:
        for position, row in enumerate(rows):
            overlap = len(query & stems(row["user_message"]))
            if overlap:
                scored.append((-overlap, position))
    scored.sort()
    ranked_positions = [position for _, position in scored[: limit * 2]]
    order = [
        (Ranked(rows[p]["id"], round(-o / len(query), 4), RetrievalMethod.WORDS), rows[p])
        for o, p in scored[: limit * 2]
    ]
    taken = set(ranked_positions)
    order.extend(
        (Ranked(row["id"], 0.0, RetrievalMethod.RECENT), row)
        for position, row in enumerate(rows[: limit + len(taken)])
        if position not in taken
    )
    return order


def training_examples_select(
    *,
    lead_message: str,
    limit: int,
    max_chars: int = 6000,
    max_field_chars: int = 500,
    exclude_ids: Collection[int] = (),
) -> list[dict[str, Any]]:
    """The items the agent's prompt shows, best first, bounded in count, per-field size and total size.

    Each item: {"id", "type", "user_message", "ai_response", "expected_response", "feedback", "score",
    "method"}. One query for full text or word stems (ranking and rows together); with embeddings, the
    vector cache's check, the read, and one embeddings call.
    """
    if limit <= 0:
        return []
    order: list[tuple[Ranked, dict[str, Any]]] = []
    if embeddings.embeddings_enabled():
        try:
            ranked = rank_embeddings(text=lead_message, limit=limit, exclude_ids=exclude_ids)
        except embeddings.EmbeddingError:
            ranked = []
        if ranked:
            order = _rows_for_ranked(ranked=ranked, limit=limit, exclude_ids=exclude_ids)
    if not order:
        if _is_postgres():
            order = _rows_full_text(text=lead_message, limit=limit, exclude_ids=exclude_ids)
        else:
            order = _rows_word_stems(text=lead_message, limit=limit, exclude_ids=exclude_ids)
    chosen: list[dict[str, Any]] = []
    used = 0
    for rank, row in order:
        item = {
            "type": row["example_type"],
            "user_message": row["user_message"][:max_field_chars],
            "ai_response": row["ai_response"][:max_field_chars],
            "expected_response": (row["expected_response"] or "")[:max_field_chars],
            "feedback": row["feedback"][:max_field_chars],
        }
        size = sum(len(value) for value in item.values())
        if used + size > max_chars:
            continue
        chosen.append({"id": row["id"], **item, "score": rank.score, "method": rank.method})
        used += size
        if len(chosen) >= limit:
            break
    return chosen


# --- Today's method, kept as the benchmark's and the tests' baseline ----------------------------------


def training_examples_recent_overlap(
    *, lead_message: str, limit: int, candidates: int = 200, exclude_ids: Collection[int] = ()
) -> list[int]:
    """The method before retrieval: word overlap over the `candidates` most recently approved. Ids only."""
    rows = list(
        TrainingExample.objects.filter(status=ExampleStatus.APPROVED)
        .exclude(pk__in=list(exclude_ids))
        .order_by(f"-{DECIDED_AT}", "-id")
        .values("id", "user_message")[:candidates]
    )
    query = set(_OLD_WORD.findall(lead_message.lower()))
    scored = sorted(
        enumerate(rows),
        key=lambda pair: (-len(query & set(_OLD_WORD.findall(pair[1]["user_message"].lower()))), pair[0]),
    )
    return [row["id"] for _, row in scored[:limit]]


# --- Similar examples (lifecycle: near-duplicates and conflicts) --------------------------------------


def trigrams(text: str) -> set[str]:
    """pg_trgm's trigrams: each word padded with two spaces in front and one behind."""
    grams: set[str] = set()
    for word in words(text):
        padded = f"  {word} "
        grams.update(padded[i : i + 3] for i in range(len(padded) - 2))
    return grams


def trigram_similarity(a: str, b: str) -> float:
    left, right = trigrams(a), trigrams(b)
    if not left or not right:
        return 0.0
    return len(left & right) / len(left | right)
