import pytest
from django.core.exceptions import ValidationError
from django.db import connection

from leads.models import Notification
from tests.concurrency import race
from tests.factories import TrainingExampleFactory
from training import services
from training.models import ExampleStatus, TrainingExample


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_two_managers_deciding_at_once_make_one_decision(make_user):
    if connection.vendor != "postgresql":
        pytest.skip("needs PostgreSQL row locks")
    operator = make_user("operator")
    reviewers = [make_user("manager", username="m1"), make_user("manager", username="m2")]
    example = TrainingExampleFactory(submitted_by=operator)

    def decide(reviewer, decide_fn):
        try:
            decide_fn(example=TrainingExample.objects.get(pk=example.pk), reviewer=reviewer)
            return "decided"
        except ValidationError as exc:
            return "refused:" + ",".join(exc.message_dict)

    outcomes = race(
        lambda: decide(reviewers[0], services.training_example_approve),
        lambda: decide(reviewers[1], services.training_example_reject),
        timeout=30,
    )
    assert sorted(outcomes) == ["decided", "refused:status"]
    example.refresh_from_db()
    assert example.status in (ExampleStatus.APPROVED, ExampleStatus.REJECTED)
    assert example.decided_by in reviewers and example.decided_at is not None
    assert Notification.objects.filter(recipient=operator).count() == 1
