"""Retrieval among all approved examples (issue #18, Done when 1)."""

import pytest
from django.utils import timezone

from training.models import ExampleStatus, ExampleType, TrainingExample
from training.retrieval import services
from training.retrieval.models import ExampleEmbedding, RetrievalMethod
from training.retrieval.selectors import (
    stem,
    training_examples_recent_overlap,
    training_examples_select,
    trigram_similarity,
)
from training.review.fields import DECIDED_AT
from training.selectors import training_examples_for_prompt

LIMIT = 12


def _chosen_ids(message: str, **kwargs) -> list[int]:
    return [item["id"] for item in training_examples_for_prompt(lead_message=message, limit=LIMIT, **kwargs)]


def test_old_example_sharing_only_a_stem_is_chosen_and_todays_method_misses_it(approved_set):
    relevant = approved_set(relevant_message="Can my payment be refunded?")
    message = "Do you offer refunds"

    chosen = training_examples_for_prompt(lead_message=message, limit=LIMIT)

    assert chosen[0]["id"] == relevant.pk
    assert chosen[0]["method"] in (RetrievalMethod.FULL_TEXT, RetrievalMethod.WORDS)
    assert chosen[0]["score"] > 0
    assert len(chosen) == LIMIT  # the rest filled with the most recent, as before
    assert relevant.pk not in training_examples_recent_overlap(lead_message=message, limit=LIMIT)


def test_old_paraphrase_sharing_no_word_is_chosen_by_embeddings(approved_set, fake_openai, settings):
    settings.OPENAI_EMBEDDINGS_MODEL = "fake-embedding"
    fake_openai.embedding_dims = 512
    fake_openai.embedding_synonyms.update({"expensive": "price", "pricing": "price", "cost": "price"})
    relevant = approved_set(relevant_message="Tell me the pricing")
    message = "How expensive is it"
    assert not (set(message.lower().split()) & set(relevant.user_message.lower().split()))
    # Computed once per example by the task (here run in process), in batches.
    from training.retrieval.tasks import embed_missing

    assert embed_missing.apply().get() == 2000
    assert ExampleEmbedding.objects.count() == 2000
    assert embed_missing.apply().get() == 0  # a second run finds nothing to do

    chosen = training_examples_for_prompt(lead_message=message, limit=LIMIT)

    assert chosen[0]["id"] == relevant.pk
    assert chosen[0]["method"] == RetrievalMethod.EMBEDDING
    assert relevant.pk not in training_examples_recent_overlap(lead_message=message, limit=LIMIT)
    # Without embeddings no method can see a paraphrase with no shared word.
    settings.OPENAI_EMBEDDINGS_MODEL = ""
    assert relevant.pk not in _chosen_ids(message)


def test_embeddings_down_falls_back_to_text_ranking(approved_set, fake_openai, settings):
    settings.OPENAI_EMBEDDINGS_MODEL = "fake-embedding"
    relevant = approved_set(relevant_message="Can my payment be refunded?", count=50)
    services.example_embeddings_compute(
        example_ids=list(TrainingExample.objects.values_list("id", flat=True))
    )
    fake_openai.stop()  # the server is gone: the query cannot be embedded

    chosen = training_examples_for_prompt(lead_message="Do you offer refunds", limit=3)

    assert chosen[0]["id"] == relevant.pk
    assert chosen[0]["method"] != RetrievalMethod.EMBEDDING


def test_retired_example_leaves_the_agents_examples_at_once(approved_set, fake_openai, settings):
    settings.OPENAI_EMBEDDINGS_MODEL = "fake-embedding"
    relevant = approved_set(relevant_message="Can my payment be refunded?", count=30)
    services.example_embeddings_compute(
        example_ids=list(TrainingExample.objects.values_list("id", flat=True))
    )
    assert _chosen_ids("refunds please")[0] == relevant.pk

    TrainingExample.objects.filter(pk=relevant.pk).update(retired_at=timezone.now())

    assert relevant.pk not in _chosen_ids("refunds please")  # the cached vector is not enough
    settings.OPENAI_EMBEDDINGS_MODEL = ""
    assert relevant.pk not in _chosen_ids("refunds please")


@pytest.mark.parametrize("status", [ExampleStatus.PENDING, ExampleStatus.REJECTED])
def test_only_approved_examples_are_chosen(db, status):
    TrainingExample.objects.create(
        user_message="Do you give refunds?",
        ai_response="No.",
        feedback="x",
        example_type=ExampleType.BAD,
        status=status,
        **{DECIDED_AT: None if status == ExampleStatus.PENDING else timezone.now()},
    )
    assert training_examples_for_prompt(lead_message="Do you give refunds?", limit=5) == []


def test_bounded_in_count_field_size_and_total(db):
    now = timezone.now()
    TrainingExample.objects.bulk_create(
        TrainingExample(
            user_message=f"refund question {i} " + "x" * 900,
            ai_response="y" * 900,
            feedback="z",
            example_type=ExampleType.GOOD,
            status=ExampleStatus.APPROVED,
            **{DECIDED_AT: now},
        )
        for i in range(30)
    )
    chosen = training_examples_select(lead_message="refund", limit=20, max_chars=3000, max_field_chars=200)
    assert 0 < len(chosen) <= 20
    assert all(len(item["user_message"]) <= 200 and len(item["ai_response"]) <= 200 for item in chosen)
    assert (
        sum(
            len(item[k])
            for item in chosen
            for k in ("type", "user_message", "ai_response", "expected_response", "feedback")
        )
        <= 3000
    )
    assert training_examples_select(lead_message="refund", limit=0) == []


def test_excluded_ids_are_never_chosen(approved_set):
    relevant = approved_set(relevant_message="Can my payment be refunded?", count=20)
    assert relevant.pk not in _chosen_ids("refunds", exclude_ids=(relevant.pk,))


def test_uses_are_recorded_once_per_reply(db, make_conversation):
    conversation, replies = make_conversation(exchanges=1)
    example = TrainingExample.objects.create(
        user_message="Lead question 0",
        ai_response="Agent answer 0",
        feedback="ok",
        example_type=ExampleType.GOOD,
        status=ExampleStatus.APPROVED,
        **{DECIDED_AT: timezone.now()},
    )
    items = training_examples_for_prompt(lead_message="Lead question", limit=3)
    assert services.example_uses_record(message_id=replies[0].pk, examples=items) == 1
    services.example_uses_record(message_id=replies[0].pk, examples=items)  # a retried turn
    use = replies[0].example_uses.get()
    assert (use.example_id, use.rank, use.method) == (example.pk, 1, items[0]["method"])


def test_stemmer_and_trigrams():
    assert stem("refunds") == stem("refunded") == stem("refund")
    assert stem("cancelling") == stem("cancel")
    assert trigram_similarity("How much is it?", "how much is it") == 1.0
    assert trigram_similarity("How much is it?", "Where do I log in") < 0.2
