import pytest
from django.urls import reverse

from tests.factories import TrainingExampleFactory
from training.models import ExampleStatus

pytestmark = pytest.mark.django_db


def test_admin_actions_use_the_services(client, manager, operator):
    pending = TrainingExampleFactory(submitted_by=operator)
    decided = TrainingExampleFactory(
        submitted_by=operator, status="approved", approved_by=manager, approved_at=pending.created_at
    )
    client.force_login(manager)
    url = reverse("admin:training_trainingexample_changelist")
    response = client.post(
        url, {"action": "approve_selected", "_selected_action": [pending.pk, decided.pk]}, follow=True
    )
    assert response.status_code == 200
    pending.refresh_from_db()
    assert pending.status == ExampleStatus.APPROVED and pending.approved_by == manager
    assert "Skipped #" in response.content.decode()
    client.post(url, {"action": "reopen_selected", "_selected_action": [decided.pk]})
    decided.refresh_from_db()
    assert decided.status == ExampleStatus.PENDING and decided.approved_at is None


def test_operator_has_no_review_actions(client, operator):
    example = TrainingExampleFactory(submitted_by=operator)
    client.force_login(operator)
    url = reverse("admin:training_trainingexample_changelist")
    client.post(url, {"action": "approve_selected", "_selected_action": [example.pk]})
    example.refresh_from_db()
    assert example.status == ExampleStatus.PENDING
