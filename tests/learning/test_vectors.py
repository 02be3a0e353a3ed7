"""The in-process vector matrix behind embedding retrieval: invalidated through the shared version stamp,
ranked like a brute-force scan, and the lead message embedded once (issue #18, retrieval speed)."""

import numpy as np
import pytest
from django.utils import timezone

from training.models import ExampleStatus, ExampleType, TrainingExample
from training.retrieval import embeddings, services, vectors
from training.retrieval.models import ExampleEmbedding, RetrievalMethod
from training.retrieval.selectors import rank_embeddings
from training.review.fields import DECIDED_AT
from training.review.services import training_example_restore, training_example_retire
from training.services import training_example_approve, training_example_reopen

pytestmark = pytest.mark.django_db(transaction=False)


@pytest.fixture
def embedded(fake_openai, settings):
    settings.OPENAI_EMBEDDINGS_MODEL = "fake-embedding"
    fake_openai.embedding_dims = 128
    fake_openai.embedding_synonyms.update({"refunds": "refund", "refunded": "refund", "money": "refund"})

    def make(*, count: int = 40, distinct: bool = False) -> list[TrainingExample]:
        now = timezone.now()
        words = ["zoom", "coach", "module", "video", "login", "slack", "calendar", "replay"]
        words += ["refund", "money"]
        rows = TrainingExample.objects.bulk_create(
            TrainingExample(
                user_message=" ".join(words[(i + k) % len(words)] for k in range(1 + i % 4))
                + (f" topic{i} extra{i * 7}" if distinct else ""),
                ai_response=f"Answer {i}",
                feedback="ok",
                example_type=ExampleType.GOOD,
                status=ExampleStatus.APPROVED,
                **{DECIDED_AT: now},
            )
            for i in range(count)
        )
        services.example_embeddings_compute(example_ids=[r.pk for r in rows])
        return rows

    return make


def _pending(message: str, submitter) -> TrainingExample:
    return TrainingExample.objects.create(
        user_message=message,
        ai_response="We never refund.",
        expected_response="Yes, within 14 days.",
        feedback="Policy.",
        example_type=ExampleType.CORRECTION,
        status=ExampleStatus.PENDING,
        submitted_by=submitter,
    )


def _ids(text: str, limit: int = 5) -> list[int]:
    return [r.example_id for r in rank_embeddings(text=text, limit=limit)]


def test_approving_is_seen_by_the_next_selection_in_every_worker(embedded, manager, operator):
    embedded()
    other_worker = vectors.VectorMatrix()  # another process's matrix, warmed before the approval
    _, before = other_worker.current(model="fake-embedding")
    assert _ids("can I get my money back")  # this process's matrix is warm too
    example = _pending("Money back please, refunded?", operator)

    training_example_approve(example=example, reviewer=manager)
    services.example_embeddings_compute(example_ids=[example.pk])  # the task queued by the approval

    assert example.pk in _ids("money refunded")
    ids, matrix = other_worker.current(model="fake-embedding")
    assert example.pk in ids.tolist()
    assert matrix.shape == (before.shape[0] + 1, before.shape[1])
    assert matrix.flags.c_contiguous and matrix.dtype == np.float32


def test_retiring_takes_the_vector_out_at_once_and_restoring_brings_it_back(embedded, manager):
    rows = embedded()
    other_worker = vectors.VectorMatrix()
    target = _ids("refund money", limit=1)[0]
    assert target in other_worker.current(model="fake-embedding")[0].tolist()

    training_example_retire(example=TrainingExample.objects.get(pk=target), user=manager)

    assert target not in _ids("refund money", limit=len(rows))
    assert target not in other_worker.current(model="fake-embedding")[0].tolist()
    training_example_restore(example=TrainingExample.objects.get(pk=target), user=manager)
    assert _ids("refund money", limit=1)[0] == target


def test_reopening_an_approved_example_takes_it_out(embedded, manager):
    embedded()
    target = _ids("refund money", limit=1)[0]
    training_example_reopen(example=TrainingExample.objects.get(pk=target), user=manager)
    assert target not in vectors.vector_matrix().current(model="fake-embedding")[0].tolist()


def test_unchanged_stamp_costs_no_query(embedded, django_assert_num_queries):
    embedded()
    _ids("refund money")  # warm: matrix and the message's vector
    with django_assert_num_queries(0):
        assert _ids("refund money")


def test_a_lost_stamp_reloads(embedded, django_assert_num_queries):
    from django.core.cache import cache

    embedded()
    first = _ids("refund money")
    cache.delete(vectors.VERSION_KEY)  # evicted: a new stamp is made and the matrix refreshed
    assert _ids("refund money") == first


def test_ranking_equals_a_brute_force_scan(embedded):
    rows = embedded(count=120, distinct=True)  # ties at the cut would make either order right
    excluded = {rows[3].pk, rows[7].pk}
    TrainingExample.objects.filter(pk=rows[5].pk).update(status=ExampleStatus.REJECTED)
    text = "refunded money zoom"
    query = embeddings.embed_texts(texts=[text], for_query=True)[0]

    ranked = rank_embeddings(text=text, limit=10, exclude_ids=excluded)

    live = set(
        TrainingExample.objects.filter(status=ExampleStatus.APPROVED, retired_at__isnull=True).values_list(
            "id", flat=True
        )
    )
    brute = {
        row.example_id: float(np.dot(embeddings.vector_from_bytes(row.vector).astype(np.float64), query))
        for row in ExampleEmbedding.objects.all()
        if row.example_id in live and row.example_id not in excluded
    }
    got = [(r.example_id, r.score) for r in ranked]
    # Same scores as the scan, best first, and nothing left out scores better than the last one taken.
    assert [score for _, score in got] == [round(brute[pk], 4) for pk, _ in got]
    assert [score for _, score in got] == sorted((score for _, score in got), reverse=True)
    assert len({pk for pk, _ in got}) == len(got)
    left_out = [score for pk, score in brute.items() if pk not in {pk for pk, _ in got}]
    assert max(left_out) <= got[-1][1] + 1e-4
    assert got[0][1] == round(max(brute.values()), 4)
    assert len(got) >= 10
    assert all(r.method == RetrievalMethod.EMBEDDING for r in ranked)
    assert rows[5].pk not in [pk for pk, _ in got]  # rejected since the matrix was built: not live


def test_the_message_is_embedded_once(embedded, fake_openai):
    embedded()
    vectors.caches_clear()
    before = len(fake_openai.embedding_requests())
    _ids("refund money")
    _ids("refund money")
    assert len(fake_openai.embedding_requests()) == before + 1
    vectors.query_cache_clear_process()  # another worker: the shared cache has it
    _ids("refund money")
    assert len(fake_openai.embedding_requests()) == before + 1
    _ids("zoom login")
    assert len(fake_openai.embedding_requests()) == before + 2
