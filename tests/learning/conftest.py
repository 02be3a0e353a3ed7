import random
from datetime import timedelta

import pytest
from django.utils import timezone

from tests.e2e.conftest import demo, new_page, pytest_runtest_call  # noqa: F401 (browser fixtures, hook)
from training.models import ExampleStatus, ExampleType, TrainingExample
from training.retrieval.selectors import vector_cache_clear
from training.review.fields import DECIDED_AT

# Distractor vocabulary: nothing about money, prices or refunds.
TOPICS = [
    "schedule",
    "session",
    "zoom",
    "coach",
    "morning",
    "weekly",
    "group",
    "module",
    "video",
    "access",
    "login",
    "community",
    "calendar",
    "homework",
    "worksheet",
    "mentor",
    "replay",
    "recording",
    "timezone",
    "slack",
    "channel",
    "onboarding",
    "welcome",
    "kickoff",
]


@pytest.fixture(autouse=True)
def _fresh_vectors():
    vector_cache_clear()
    yield
    vector_cache_clear()


@pytest.fixture
def approved_set(db):
    """2,000 approved examples; `relevant` (given) is the oldest approved of all. Returns a builder."""

    def build(*, relevant_message: str, count: int = 2000, seed: int = 7) -> TrainingExample:
        rng = random.Random(seed)
        now = timezone.now()
        relevant = TrainingExample.objects.create(
            user_message=relevant_message,
            ai_response="Yes: within 14 days, no questions asked.",
            feedback="Accurate policy answer.",
            example_type=ExampleType.GOOD,
            status=ExampleStatus.APPROVED,
            **{DECIDED_AT: now - timedelta(days=400)},
        )
        rows = [
            TrainingExample(
                user_message=" ".join(rng.sample(TOPICS, 5)).capitalize() + "?",
                ai_response="Here is how that works in the program.",
                feedback="Fine.",
                example_type=ExampleType.GOOD,
                status=ExampleStatus.APPROVED,
                **{DECIDED_AT: now - timedelta(minutes=i)},
            )
            for i in range(count - 1)
        ]
        TrainingExample.objects.bulk_create(rows, batch_size=500)
        return relevant

    return build
