"""Query counts pinned for the review queue and the examples list: constant in the number of rows."""

import pytest
from django.urls import reverse

from tests.factories import AgentMessageFactory, TrainingExampleFactory, UserFactory

pytestmark = pytest.mark.django_db

# Review page: session, user, the context processor (unread count, role groups, permissions x2), the
# view's permission check reuses that cache; then the submitter filter's choices, the page count, the rows,
# the excerpts (one windowed query for every card), the pending total and the reviewers' progress.
REVIEW_QUERIES = 12
# Examples API (token-less, forced session): user permissions x2, count, rows.
EXAMPLES_API_QUERIES = 4


@pytest.fixture
def examples(make_conversation, manager):
    def make(n: int):
        for i in range(n):
            conversation, replies = make_conversation(3)
            submitter = UserFactory(username=f"submitter{i}")
            if i % 2:
                TrainingExampleFactory(
                    conversation=conversation,
                    message=replies[2],
                    submitted_by=submitter,
                    decided_by=manager,
                    status="approved",
                    decided_at=conversation.started_at,
                )
            else:
                TrainingExampleFactory(conversation=conversation, message=replies[1], submitted_by=submitter)
                TrainingExampleFactory(submitted_by=submitter, example_type="bad")

    return make


@pytest.mark.parametrize("rows", [2, 20])
def test_review_queue_query_count_is_constant(client, manager, examples, rows, django_assert_num_queries):
    examples(rows)
    client.force_login(manager)
    with django_assert_num_queries(REVIEW_QUERIES):
        response = client.get(reverse("dashboard:training_review"), {"status": "all"})
    assert response.status_code == 200
    shown = response.context["examples"]
    assert len(shown) == min(20, rows + (rows + 1) // 2)
    assert all(e.excerpt for e in shown if e.message_id)
    assert all(len(e.excerpt) <= 4 for e in shown)


@pytest.mark.parametrize("rows", [2, 20])
def test_examples_api_query_count_is_constant(api, viewer, examples, rows, django_assert_num_queries):
    examples(rows)
    client = api(viewer)
    with django_assert_num_queries(EXAMPLES_API_QUERIES):
        response = client.get("/api/training/examples/")
    assert response.status_code == 200
    assert all(row["submitted_by_name"] for row in response.data["results"])
    assert any(row["approved_by_name"] for row in response.data["results"])


# Library page: session, user, permissions x2, the submitter filter's choices, the page count, the rows with
# each row's use count (a subquery per row of the page, not a GROUP BY over every example), then the
# context processor (unread count, role groups).
LIBRARY_QUERIES = 9


@pytest.mark.parametrize("rows", [2, 20])
def test_library_query_count_is_constant_and_counts_uses(
    client, manager, examples, rows, django_assert_num_queries
):
    from training.models import TrainingExample
    from training.retrieval.models import ExampleUse

    examples(rows)
    used = TrainingExample.objects.filter(status="approved").order_by("id").first()
    for reply in AgentMessageFactory.create_batch(3):
        ExampleUse.objects.create(
            example=used,
            message=reply,
            rank=1,
            score=0.5,
            method=ExampleUse._meta.get_field("method").choices[0][0],
        )
    client.force_login(manager)
    with django_assert_num_queries(LIBRARY_QUERIES):
        response = client.get(reverse("dashboard:training_library"))
    assert response.status_code == 200
    counts = {e.pk: e.use_count for e in response.context["examples"]}
    assert counts[used.pk] == 3
    assert set(counts.values()) == ({0, 3} if len(counts) > 1 else {3})
