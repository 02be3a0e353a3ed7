"""Writes for retrieval: stored embeddings (computed once per example) and the examples each reply saw."""

import logging
from collections.abc import Iterable
from typing import Any

from django.db import transaction

from training.models import ExampleStatus, TrainingExample
from training.retrieval import embeddings
from training.retrieval.models import ExampleEmbedding, ExampleUse, RetrievalMethod
from training.retrieval.vectors import query_vectors_forget, vectors_changed

logger = logging.getLogger(__name__)

MAX_USES_PER_REPLY = 50


def example_uses_record(*, message_id: int, examples: Iterable[dict[str, Any]]) -> int:
    """Store which examples the model saw when it wrote reply `message_id`, with rank, score and method.

    `examples` are the items training_examples_for_prompt returned. Safe to call twice (a retried turn):
    the unique (message, example) pair makes the second write a no-op. Returns the rows offered.
    """
    rows = []
    for rank, item in enumerate(list(examples)[:MAX_USES_PER_REPLY], start=1):
        example_id = item.get("id")
        if not isinstance(example_id, int):
            continue
        method = (
            item.get("method") if item.get("method") in RetrievalMethod.values else RetrievalMethod.RECENT
        )
        rows.append(
            ExampleUse(
                message_id=message_id,
                example_id=example_id,
                rank=rank,
                score=float(item.get("score") or 0.0),
                method=method,
            )
        )
    if not rows:
        return 0
    # One INSERT; the unique pair turns a second recording for the same reply into a no-op.
    ExampleUse.objects.bulk_create(rows, ignore_conflicts=True)
    return len(rows)


def example_embeddings_compute(*, example_ids: list[int]) -> int:
    """Embed the lead message of each approved example that has no vector for the configured model yet.

    Safe to run twice: examples that already have one are skipped, and a concurrent insert is ignored.
    """
    if not embeddings.embeddings_enabled() or not example_ids:
        return 0
    model = embeddings.embeddings_model()
    have = set(
        ExampleEmbedding.objects.filter(example_id__in=example_ids, model=model).values_list(
            "example_id", flat=True
        )
    )
    todo = list(
        TrainingExample.objects.filter(pk__in=example_ids, status=ExampleStatus.APPROVED)
        .exclude(pk__in=have)
        .order_by("id")
        .values_list("id", "user_message")
    )
    if not todo:
        return 0
    matrix = embeddings.embed_texts(texts=[text for _, text in todo])
    rows = [
        ExampleEmbedding(
            example_id=example_id,
            model=model,
            dims=matrix.shape[1],
            vector=embeddings.vector_to_bytes(vector),
        )
        for (example_id, _), vector in zip(todo, matrix, strict=True)
    ]
    # A vector from another (older) model is replaced; a row written meanwhile by a twin task is kept.
    with transaction.atomic():
        ExampleEmbedding.objects.filter(example_id__in=[r.example_id for r in rows]).exclude(
            model=model
        ).delete()
        ExampleEmbedding.objects.bulk_create(rows, ignore_conflicts=True)
        vectors_changed()
    return len(rows)


def example_embedding_schedule(*, example_id: int) -> None:
    """Queue the embedding of a newly approved example once the transaction commits (when configured)."""
    if not embeddings.embeddings_enabled():
        return
    from config.enqueue import enqueue_on_commit
    from training.retrieval.tasks import embed_example

    enqueue_on_commit(embed_example, int(example_id))


def example_ids_missing_embeddings(*, limit: int = 500) -> list[int]:
    if not embeddings.embeddings_enabled():
        return []
    return list(
        TrainingExample.objects.filter(status=ExampleStatus.APPROVED, retired_at__isnull=True)
        .exclude(embedding__model=embeddings.embeddings_model())
        .order_by("id")
        .values_list("id", flat=True)[:limit]
    )


def example_vectors_forget(*, example_ids: Iterable[int], texts: Iterable[str]) -> int:
    """A lead's data was deleted: the stored vectors of examples made from its words go (the embeddings task
    computes them anew from the anonymised text), and so do the cached vectors of its messages."""
    ids = list(example_ids)
    deleted = ExampleEmbedding.objects.filter(example_id__in=ids).delete()[0] if ids else 0
    if deleted:
        vectors_changed()
    query_vectors_forget(texts=texts)
    return deleted
