from datetime import timedelta

import pytest
from django.utils import timezone

from tests.factories import TrainingExampleFactory
from training.selectors import training_examples_for_prompt

pytestmark = pytest.mark.django_db


def approved(user_message: str, minutes_ago: int = 0, **kwargs):
    return TrainingExampleFactory(
        status="approved",
        decided_at=timezone.now() - timedelta(minutes=minutes_ago),
        user_message=user_message,
        **kwargs,
    )


def test_most_relevant_first_then_most_recent(django_assert_num_queries):
    approved("What time does the gym open?", minutes_ago=1)
    approved("Do you have a swimming pool?", minutes_ago=50)
    approved("Is parking free?", minutes_ago=2)
    TrainingExampleFactory(status="pending", user_message="pool pool pool swimming")
    TrainingExampleFactory(status="rejected", decided_at=timezone.now(), user_message="swimming pool price")
    # Ranking and rows in one statement (training.retrieval, issue #18).
    with django_assert_num_queries(1):
        chosen = training_examples_for_prompt(lead_message="Is the swimming pool heated?", limit=10)
    assert [c["user_message"] for c in chosen] == [
        "Do you have a swimming pool?",
        "What time does the gym open?",
        "Is parking free?",
    ]


def test_bounded_in_number_field_size_and_total_size():
    for n in range(8):
        approved(f"question {n}", ai_response="r" * 2000, feedback="f")
    assert len(training_examples_for_prompt(lead_message="question", limit=3)) == 3
    chosen = training_examples_for_prompt(
        lead_message="question", limit=10, max_chars=1200, max_field_chars=500
    )
    assert all(len(c["ai_response"]) == 500 for c in chosen)
    text_fields = ("type", "user_message", "ai_response", "expected_response", "feedback")
    assert sum(len(c[k]) for c in chosen for k in text_fields) <= 1200
    assert len(chosen) == 2
    assert training_examples_for_prompt(lead_message="question", limit=0) == []


def test_an_old_relevant_example_is_found_beyond_the_most_recently_approved():
    # Issue #18: relevance among all approved examples, no longer only the `candidates` newest.
    approved("ancient swimming pool question", minutes_ago=500)
    for n in range(5):
        approved(f"recent {n}", minutes_ago=n)
    chosen = training_examples_for_prompt(lead_message="swimming pool", limit=10, candidates=5)
    assert chosen[0]["user_message"] == "ancient swimming pool question"


def test_correction_carries_the_expected_response():
    approved("Price?", example_type="correction", ai_response="Dunno", expected_response="From $30/month")
    (item,) = training_examples_for_prompt(lead_message="price", limit=5)
    assert (item["type"], item["ai_response"], item["expected_response"]) == (
        "correction",
        "Dunno",
        "From $30/month",
    )
