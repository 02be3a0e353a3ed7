import threading

import pytest
from django.core.exceptions import ValidationError
from django.db import connection, connections

from leads.models import Notification
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
    barrier = threading.Barrier(2)
    outcomes: list[str] = []

    def decide(reviewer, decide_fn):
        try:
            barrier.wait()
            decide_fn(example=TrainingExample.objects.get(pk=example.pk), reviewer=reviewer)
            outcomes.append("decided")
        except ValidationError as exc:
            outcomes.append("refused:" + ",".join(exc.message_dict))
        finally:
            connections.close_all()

    threads = [
        threading.Thread(target=decide, args=(reviewers[0], services.training_example_approve)),
        threading.Thread(target=decide, args=(reviewers[1], services.training_example_reject)),
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert sorted(outcomes) == ["decided", "refused:status"]
    example.refresh_from_db()
    assert example.status in (ExampleStatus.APPROVED, ExampleStatus.REJECTED)
    assert example.approved_by in reviewers and example.approved_at is not None
    assert Notification.objects.filter(recipient=operator).count() == 1
