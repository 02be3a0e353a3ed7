"""The approved examples' vectors held in process, and the lead messages' vectors, for embedding ranking.

Every live (approved, not retired) example's vector of the configured model is kept as one contiguous,
normalised float32 matrix with its example ids. A version stamp in the shared cache (Redis in production)
says when it is stale: approving, retiring, restoring, reopening an example and writing vectors bump it
(now, and again when the transaction commits), so every worker sees the change on its next selection.
A refresh reads the live ids (one query) and loads only the vectors it lacks; rows that left are dropped.

The lead message's own vector is cached per message text (in process, then in the shared cache), so a
message embedded for the turn is not embedded again for a retry, an evaluation or a conflict check.
"""

import hashlib
import logging
import threading
import time
import uuid
from collections import OrderedDict
from collections.abc import Iterable

import numpy as np
from django.conf import settings
from django.core.cache import cache
from django.db import transaction

from training.models import ExampleStatus
from training.retrieval import embeddings
from training.retrieval.models import ExampleEmbedding

logger = logging.getLogger(__name__)

VERSION_KEY = "training:retrieval:vectors-version"
# Without a stamp (the cache is down) the matrix is checked against the database this often; with one, a
# lost bump is caught after this long at worst.
NO_STAMP_RECHECK_SECONDS = 2.0
STAMP_RECHECK_SECONDS = 300.0
LOAD_CHUNK = 2000

QUERY_CACHE_SIZE = 512
QUERY_CACHE_SECONDS = 24 * 3600
_QUERY_KEY = "training:retrieval:query:{model}:{digest}"


# --- The version stamp --------------------------------------------------------------------------------


def vectors_version() -> str | None:
    """The current stamp (made if missing); None when the shared cache cannot be reached."""
    try:
        value = cache.get(VERSION_KEY)
        if value is None:
            cache.add(VERSION_KEY, uuid.uuid4().hex, timeout=None)
            value = cache.get(VERSION_KEY)
    except Exception:  # a cache outage must not stop the agent's turn: fall back to a timed check
        logger.warning("retrieval: the vectors' version stamp could not be read", exc_info=True)
        return None
    return value if isinstance(value, str) else None


def _bump() -> None:
    try:
        cache.set(VERSION_KEY, uuid.uuid4().hex, timeout=None)
    except Exception:
        logger.warning("retrieval: the vectors' version stamp could not be bumped", exc_info=True)


def vectors_changed() -> None:
    """The set of live vectors changed: bump the stamp now (this process and its transaction see the change
    at once) and again on commit (so a worker that refreshed in between, before the commit, refreshes again).
    """
    _bump()
    transaction.on_commit(_bump)


# --- The matrix --------------------------------------------------------------------------------------


def _live_ids_with_vectors(*, model: str) -> np.ndarray:
    ids = ExampleEmbedding.objects.filter(
        model=model, example__status=ExampleStatus.APPROVED, example__retired_at__isnull=True
    ).values_list("example_id", flat=True)
    return np.fromiter(ids.iterator(chunk_size=LOAD_CHUNK), dtype=np.int64)


def _load(*, model: str, ids: np.ndarray) -> tuple[np.ndarray, list[np.ndarray]]:
    loaded_ids: list[int] = []
    vectors: list[np.ndarray] = []
    id_list = ids.tolist()
    for start in range(0, len(id_list), LOAD_CHUNK):
        rows = ExampleEmbedding.objects.filter(
            model=model, example_id__in=id_list[start : start + LOAD_CHUNK]
        ).values_list("example_id", "vector")
        for example_id, vector in rows:
            loaded_ids.append(example_id)
            vectors.append(embeddings.vector_from_bytes(vector))
    return np.asarray(loaded_ids, dtype=np.int64), vectors


class VectorMatrix:
    """One model's live vectors: `ids` (int64) and `matrix` (C-contiguous float32, rows of unit length)."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.clear()

    def clear(self) -> None:
        self.model = ""
        self.ids = np.zeros(0, dtype=np.int64)
        self.matrix = np.zeros((0, 0), dtype=np.float32)
        self.stamp: str | None = None
        self.checked_at = 0.0
        self.refreshes = 0

    def _fresh(self, *, model: str, stamp: str | None, now: float) -> bool:
        if model != self.model or self.refreshes == 0:
            return False
        if stamp is None:
            return self.stamp is None and now - self.checked_at < NO_STAMP_RECHECK_SECONDS
        return stamp == self.stamp and now - self.checked_at < STAMP_RECHECK_SECONDS

    def current(self, *, model: str) -> tuple[np.ndarray, np.ndarray]:
        """The ids and the matrix, refreshed when the stamp moved. One cache read when nothing changed."""
        stamp = vectors_version()
        now = time.monotonic()
        if self._fresh(model=model, stamp=stamp, now=now):
            return self.ids, self.matrix
        with self.lock:
            if not self._fresh(model=model, stamp=stamp, now=now):
                # The stamp was read before the database: a change made meanwhile bumps it again.
                self._refresh(model=model)
                self.stamp, self.checked_at = stamp, now
            return self.ids, self.matrix

    def _refresh(self, *, model: str) -> None:
        live = _live_ids_with_vectors(model=model)
        if model != self.model:
            self.ids, self.matrix = np.zeros(0, dtype=np.int64), np.zeros((0, 0), dtype=np.float32)
        keep = np.isin(self.ids, live)
        new_ids, vectors = _load(model=model, ids=live[~np.isin(live, self.ids)])
        dims = self.matrix.shape[1] if len(self.ids[keep]) else None
        if vectors and (dims is not None and any(v.shape[0] != dims for v in vectors)):
            # A model changed its size: start over with everything.
            new_ids, vectors = _load(model=model, ids=live)
            keep = np.zeros(len(self.ids), dtype=bool)
        if vectors:
            sizes = [v.shape[0] for v in vectors]
            common = max(set(sizes), key=sizes.count)
            fits = np.asarray([size == common for size in sizes])
            added = embeddings.normalise(np.vstack([v for v, ok in zip(vectors, fits, strict=True) if ok]))
            kept = self.matrix[keep] if keep.any() else np.zeros((0, common), dtype=np.float32)
            self.ids = np.concatenate([self.ids[keep], new_ids[fits]])
            self.matrix = np.ascontiguousarray(np.vstack([kept, added]), dtype=np.float32)
        elif not keep.all():
            self.ids = self.ids[keep]
            self.matrix = np.ascontiguousarray(self.matrix[keep])
        self.model = model
        self.refreshes += 1


_matrix = VectorMatrix()


def vector_matrix() -> VectorMatrix:
    return _matrix


# --- The lead message's vector ---------------------------------------------------------------------------

_queries: "OrderedDict[tuple[str, str], np.ndarray]" = OrderedDict()
_queries_lock = threading.Lock()


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()[:32]


def _text_digest(text: str) -> str:
    return _digest(f"{settings.OPENAI_BASE_URL}\n{text}")


def query_cache_key(*, text: str) -> str:
    """The shared-cache key of a message text's vector (for the configured server and model)."""
    return _QUERY_KEY.format(model=embeddings.embeddings_model(), digest=_text_digest(text))


def query_vectors_forget(*, texts: Iterable[str]) -> None:
    """Drop the cached vectors of these texts (a forgotten lead's messages): this process's and the shared
    cache's. Other processes keep theirs in memory only, bounded by QUERY_CACHE_SIZE, until they restart."""
    digests = {_text_digest(text) for text in texts}
    if not digests:
        return
    with _queries_lock:
        for key in [key for key in _queries if key[1] in digests]:
            del _queries[key]
    model = embeddings.embeddings_model()
    try:
        cache.delete_many([_QUERY_KEY.format(model=model, digest=digest) for digest in digests])
    except Exception:
        logger.warning(
            "retrieval: forgotten query vectors could not be dropped from the cache", exc_info=True
        )


def query_vector(*, text: str, dims: int | None = None) -> np.ndarray:
    """The message's normalised vector: from this process, the shared cache, or one embeddings call.

    A cached vector of another size than `dims` (the model changed) is not used. Raises
    embeddings.EmbeddingError when it has to be embedded and cannot be (the caller falls back)."""
    model = embeddings.embeddings_model()
    key = (model, _text_digest(text))
    with _queries_lock:
        vector = _queries.get(key)
        if vector is not None and (dims is None or vector.shape[0] == dims):
            _queries.move_to_end(key)
            return vector
    shared_key = query_cache_key(text=text)
    try:
        stored = cache.get(shared_key)
    except Exception:
        stored = None
    vector = embeddings.vector_from_bytes(stored) if isinstance(stored, bytes) and stored else None
    if vector is None or (dims is not None and vector.shape[0] != dims):
        vector = embeddings.embed_texts(texts=[text], for_query=True)[0]
        try:
            cache.set(shared_key, embeddings.vector_to_bytes(vector), timeout=QUERY_CACHE_SECONDS)
        except Exception:
            logger.warning("retrieval: a query vector could not be cached", exc_info=True)
    with _queries_lock:
        _queries[key] = vector
        while len(_queries) > QUERY_CACHE_SIZE:
            _queries.popitem(last=False)
    return vector


def caches_clear() -> None:
    """Forget the matrix and the query vectors held in this process (tests, the benchmark)."""
    _matrix.clear()
    query_cache_clear_process()


def query_cache_clear_process() -> None:
    with _queries_lock:
        _queries.clear()
