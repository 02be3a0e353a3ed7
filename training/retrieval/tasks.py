from celery import shared_task

from training.retrieval import services
from training.retrieval.embeddings import EmbeddingError


@shared_task(
    name="training.embed_examples",
    autoretry_for=(EmbeddingError,),
    retry_backoff=True,
    max_retries=3,
    time_limit=120,
    soft_time_limit=100,
)
def embed_examples(example_ids: list[int]) -> int:
    return services.example_embeddings_compute(example_ids=[int(i) for i in example_ids])


@shared_task(
    name="training.embed_example",
    autoretry_for=(EmbeddingError,),
    retry_backoff=True,
    max_retries=3,
    time_limit=60,
    soft_time_limit=50,
)
def embed_example(example_id: int) -> int:
    """Once per approved example (queued on approval); a second run finds the vector and does nothing."""
    return services.example_embeddings_compute(example_ids=[int(example_id)])


@shared_task(name="training.embed_missing", time_limit=600, soft_time_limit=540)
def embed_missing() -> int:
    """Backfill: approved examples without a vector for the configured model (beat, every 5 minutes)."""
    done = 0
    for _ in range(20):
        ids = services.example_ids_missing_embeddings(limit=500)
        if not ids:
            break
        written = services.example_embeddings_compute(example_ids=ids)
        done += written
        if not written:
            break
    return done
