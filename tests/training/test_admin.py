import pytest
from django.urls import reverse

from leads.models import Activity
from tests.factories import TrainingExampleFactory, UserFactory
from training.models import ExampleStatus
from training.services import training_example_approve

pytestmark = pytest.mark.django_db


def test_admin_actions_use_the_services(client, manager, operator):
    pending = TrainingExampleFactory(submitted_by=operator)
    decided = TrainingExampleFactory(
        submitted_by=operator, status="approved", decided_by=manager, decided_at=pending.created_at
    )
    client.force_login(manager)
    url = reverse("admin:training_trainingexample_changelist")
    response = client.post(
        url, {"action": "approve_selected", "_selected_action": [pending.pk, decided.pk]}, follow=True
    )
    assert response.status_code == 200
    pending.refresh_from_db()
    assert pending.status == ExampleStatus.APPROVED and pending.decided_by == manager
    assert "Skipped #" in response.content.decode()
    client.post(url, {"action": "reopen_selected", "_selected_action": [decided.pk]})
    decided.refresh_from_db()
    assert decided.status == ExampleStatus.PENDING and decided.decided_at is None


def test_operator_has_no_review_actions(client, operator):
    example = TrainingExampleFactory(submitted_by=operator)
    client.force_login(operator)
    url = reverse("admin:training_trainingexample_changelist")
    client.post(url, {"action": "approve_selected", "_selected_action": [example.pk]})
    example.refresh_from_db()
    assert example.status == ExampleStatus.PENDING


def _change_form(example, **changes):
    form = {
        "user_message": example.user_message,
        "ai_response": example.ai_response,
        "expected_response": example.expected_response,
        "feedback": example.feedback,
        "example_type": example.example_type,
    }
    form.update(changes)
    return form


def test_approved_examples_texts_are_read_only_in_admin(client, manager, operator):
    example = TrainingExampleFactory(submitted_by=operator, feedback="Original feedback")
    training_example_approve(example=example, reviewer=manager)
    client.force_login(UserFactory(username="root", is_superuser=True))
    url = reverse("admin:training_trainingexample_change", args=[example.pk])
    page = client.get(url).content.decode()
    for field in ("user_message", "ai_response", "feedback", "expected_response", "example_type"):
        assert f'name="{field}"' not in page, field
    client.post(url, _change_form(example, feedback="Rewritten after approval"))
    example.refresh_from_db()
    assert example.feedback == "Original feedback"


def test_pending_example_edited_in_admin_goes_through_the_service(client, manager, operator):
    example = TrainingExampleFactory(submitted_by=operator, feedback="Original feedback")
    client.force_login(manager)
    url = reverse("admin:training_trainingexample_change", args=[example.pk])
    response = client.post(url, _change_form(example, feedback="  Clearer feedback  "))
    assert response.status_code == 302
    example.refresh_from_db()
    assert example.feedback == "Clearer feedback"  # stripped by the service
    activity = Activity.objects.get(verb="training.updated")
    assert activity.actor == manager and activity.data == {"example_id": example.pk, "fields": ["feedback"]}


def test_examples_cannot_be_added_in_admin(client):
    client.force_login(UserFactory(username="root", is_superuser=True))
    assert client.get(reverse("admin:training_trainingexample_add")).status_code == 403
