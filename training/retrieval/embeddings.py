"""Embeddings on the same OpenAI-compatible server as the model (OPENAI_BASE_URL), stored as float32 bytes.

Only used when OPENAI_EMBEDDINGS_MODEL and OPENAI_API_KEY are set. Vectors are L2-normalised before they are
stored, so a dot product is the cosine similarity.
"""

import base64
import logging
import threading

import numpy as np
import openai
from django.conf import settings

logger = logging.getLogger(__name__)

MAX_INPUT_CHARS = 2000
BATCH_SIZE = 64
# The lead is waiting while the query is embedded: a short budget, one attempt, then full-text instead.
QUERY_TIMEOUT_SECONDS = 3.0


class EmbeddingError(Exception):
    pass


def embeddings_enabled() -> bool:
    return bool(settings.OPENAI_EMBEDDINGS_MODEL and settings.OPENAI_API_KEY)


def embeddings_model() -> str:
    return settings.OPENAI_EMBEDDINGS_MODEL


_clients: dict[tuple[str, str | None, float, int], openai.OpenAI] = {}
_clients_lock = threading.Lock()


def _client(*, timeout: float, retries: int) -> openai.OpenAI:
    """One client (and its connection pool) per configuration: no new connection per lead message."""
    key = (settings.OPENAI_API_KEY, settings.OPENAI_BASE_URL, timeout, retries)
    with _clients_lock:
        client = _clients.get(key)
        if client is None:
            client = openai.OpenAI(api_key=key[0], base_url=key[1], timeout=timeout, max_retries=retries)
            _clients[key] = client
        return client


def normalise(matrix: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(matrix, axis=-1, keepdims=True)
    norms[norms == 0] = 1.0
    return (matrix / norms).astype(np.float32)


def embed_texts(*, texts: list[str], for_query: bool = False) -> np.ndarray:
    """One row per text, normalised float32. Raises EmbeddingError on any failure or a malformed answer."""
    if not texts:
        return np.zeros((0, 0), dtype=np.float32)
    timeout = QUERY_TIMEOUT_SECONDS if for_query else settings.OPENAI_TIMEOUT_SECONDS
    client = _client(timeout=timeout, retries=0 if for_query else settings.OPENAI_MAX_RETRIES)
    rows: list[np.ndarray] = []
    try:
        for start in range(0, len(texts), BATCH_SIZE):
            batch = [(text or " ")[:MAX_INPUT_CHARS] for text in texts[start : start + BATCH_SIZE]]
            # base64 float32 and the raw body: the SDK's typed parse of 1,536 floats costs more than the
            # whole ranking.
            raw = client.embeddings.with_raw_response.create(
                model=embeddings_model(), input=batch, encoding_format="base64"
            )
            data = sorted(raw.http_response.json().get("data") or [], key=lambda item: item.get("index", 0))
            if len(data) != len(batch):
                raise EmbeddingError(f"asked for {len(batch)} embeddings, got {len(data)}")
            rows.extend(_decode(item.get("embedding")) for item in data)
    except (openai.OpenAIError, ValueError, TypeError, AttributeError) as exc:
        raise EmbeddingError(f"{exc.__class__.__name__}: {exc}") from exc
    if len({row.shape[0] for row in rows}) != 1:
        raise EmbeddingError("the server returned embeddings of different sizes")
    matrix = np.vstack(rows).astype(np.float32)
    if matrix.ndim != 2 or matrix.shape[1] == 0 or not np.isfinite(matrix).all():
        raise EmbeddingError("the server returned malformed embeddings")
    return normalise(matrix)


def _decode(value: object) -> np.ndarray:
    """An embedding as base64 float32 (what we ask for) or a JSON list of numbers (servers that ignore it)."""
    if isinstance(value, str):
        return np.frombuffer(base64.b64decode(value), dtype="<f4")
    if isinstance(value, list):
        return np.asarray(value, dtype=np.float32)
    raise EmbeddingError("an embedding is neither base64 nor a list of numbers")


def vector_to_bytes(vector: np.ndarray) -> bytes:
    return np.asarray(vector, dtype="<f4").tobytes()


def vector_from_bytes(data: bytes | memoryview) -> np.ndarray:
    return np.frombuffer(bytes(data), dtype="<f4")
