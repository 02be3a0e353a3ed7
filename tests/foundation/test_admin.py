import pytest
from django.contrib.admin.sites import site
from django.urls import reverse

from leads.models import Notification
from tests.factories import (
    ActivityFactory,
    AgentMessageFactory,
    NotificationFactory,
    TrainingExampleFactory,
    UserFactory,
)
from training.models import TrainingExample

pytestmark = pytest.mark.django_db

OUR_MODELS = [m for m in site._registry if m._meta.app_label in {"leads", "prompts", "training"}]


def test_every_model_of_ours_is_registered():
    labels = {m._meta.label for m in OUR_MODELS}
    assert {
        "leads.Lead",
        "leads.Conversation",
        "leads.Message",
        "leads.Activity",
        "leads.Notification",
        "prompts.PromptVersion",
        "training.TrainingExample",
    } <= labels


@pytest.mark.parametrize("model", OUR_MODELS, ids=lambda m: m._meta.label)
def test_changelists_load_with_search_for_a_superuser(client, model):
    AgentMessageFactory()
    ActivityFactory()
    NotificationFactory()
    TrainingExampleFactory()
    client.force_login(UserFactory(username="root", is_superuser=True))
    url = reverse(f"admin:{model._meta.app_label}_{model._meta.model_name}_changelist")
    assert client.get(url).status_code == 200
    assert client.get(url, {"q": "x"}).status_code == 200


def _run_action(client, action: str, example: TrainingExample):
    url = reverse("admin:training_trainingexample_changelist")
    return client.post(url, {"action": action, "_selected_action": [example.pk]}, follow=True)


def test_manager_approves_and_rejects_through_admin_actions(client, manager, operator):
    approve_me = TrainingExampleFactory(submitted_by=operator)
    reject_me = TrainingExampleFactory(submitted_by=operator)
    client.force_login(manager)
    assert _run_action(client, "approve_selected", approve_me).status_code == 200
    assert _run_action(client, "reject_selected", reject_me).status_code == 200
    approve_me.refresh_from_db()
    reject_me.refresh_from_db()
    assert (approve_me.status, approve_me.decided_by) == ("approved", manager)
    assert (reject_me.status, reject_me.decided_by) == ("rejected", manager)
    assert approve_me.decided_at is not None
    # The same service as the API: the submitter is told about each decision.
    assert Notification.objects.filter(recipient=operator).count() == 2


def test_operator_cannot_use_review_actions(client, operator):
    example = TrainingExampleFactory()
    client.force_login(operator)
    response = client.get(reverse("admin:training_trainingexample_changelist"))
    assert response.status_code == 200
    assert b"approve_selected" not in response.content
    _run_action(client, "approve_selected", example)
    example.refresh_from_db()
    assert example.status == "pending"


def test_viewer_cannot_change_examples_in_admin(client, viewer):
    example = TrainingExampleFactory()
    client.force_login(viewer)
    url = reverse("admin:training_trainingexample_change", args=[example.pk])
    response = client.post(url, {"feedback": "hijacked"})
    example.refresh_from_db()
    assert example.feedback != "hijacked"
    assert response.status_code in (200, 403)
