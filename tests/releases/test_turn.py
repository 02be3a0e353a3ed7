"""The agent's turn with releases: the sticky experiment assignment and the version's model settings,
through the real webhook and the fake OpenAI server over HTTP."""

import json

import pytest
from django.urls import reverse
from django.utils import timezone

from leads.models import Lead, Message, MessageRole
from prompts.models import PromptVersion
from prompts.releases import services
from prompts.releases.models import ExperimentAssignment
from tests.factories import PromptVersionFactory

SECRET = "test-webhook-secret"


@pytest.fixture(autouse=True)
def _agent_settings(settings):
    settings.MANYCHAT_WEBHOOK_SECRET = SECRET
    settings.AGENT_ASYNC_MODE = False
    settings.AGENT_HOLDING_TEXT = ""
    settings.CELERY_TASK_ALWAYS_EAGER = True
    settings.MANYCHAT_API_TOKEN = ""
    from config.celery import app

    eager = app.conf.task_always_eager
    app.conf.task_always_eager = True
    yield
    app.conf.task_always_eager = eager


@pytest.fixture
def hook(client):
    def post(subscriber_id: str, text: str):
        body = {"subscriber_id": subscriber_id, "text": text, "channel": "instagram", "first_name": "Mia"}
        return client.post(
            reverse("webhooks:manychat"),
            data=json.dumps(body),
            content_type="application/json",
            HTTP_X_WEBHOOK_SECRET=SECRET,
        )

    return post


@pytest.fixture
def versions(db):
    a = PromptVersionFactory(
        version=1,
        content="You are Ava (A).",
        is_active=True,
        activated_at=timezone.now(),
        model_name="model-a",
    )
    b = PromptVersionFactory(version=2, content="You are Ava (B).", model_name="model-b", temperature=0.4)
    return a, b


def test_the_version_s_model_settings_go_to_the_model(fake_openai, hook, versions):
    a, _ = versions
    PromptVersion.objects.filter(pk=a.pk).update(reasoning_effort="low", max_output_tokens=300)
    assert hook("7001", "Hi there").status_code == 200
    body = fake_openai.completion_requests()[-1].json()
    assert (body["model"], body["reasoning_effort"], body["max_completion_tokens"]) == ("model-a", "low", 300)
    assert "temperature" not in body  # the version sets none: the model's default


def test_a_model_that_rejects_temperature_is_still_answered_and_the_version_flagged(
    fake_openai, hook, versions
):
    _, b = versions
    PromptVersion.objects.filter(pk=versions[0].pk).update(is_active=False)
    PromptVersion.objects.filter(pk=b.pk).update(is_active=True, activated_at=timezone.now())
    fake_openai.reject_params("model-b", "temperature")
    response = hook("7002", "How much is it?")
    assert response.status_code == 200
    reply = Message.objects.get(role=MessageRole.AGENT, conversation__lead__manychat_subscriber_id="7002")
    assert reply.text == "Thanks! How can I help?" and reply.prompt_version_id == b.pk
    sent = [r.json() for r in fake_openai.completion_requests()]
    assert [("temperature" in s) for s in sent] == [True, False]  # rejected once, retried without it
    b.refresh_from_db()
    assert b.unsupported_params == ["temperature"]
    hook("7002", "And the next step?")
    assert len(fake_openai.completion_requests()) == 3  # the next call does not pay for the rejection
    assert "temperature" not in fake_openai.completion_requests()[-1].json()


def test_a_lead_keeps_its_version_for_20_messages_during_an_experiment(
    fake_openai, hook, versions, make_user
):
    a, b = versions
    manager = make_user("manager")
    services.experiment_start(version=b, user=manager, share_percent=50)
    for subscriber in ("8001", "8002", "8003", "8004"):
        for i in range(20):
            assert hook(subscriber, f"message {i} from {subscriber}").status_code == 200
    for subscriber in ("8001", "8002", "8003", "8004"):
        lead = Lead.objects.get(manychat_subscriber_id=subscriber)
        used = set(
            Message.objects.filter(conversation__lead=lead, role=MessageRole.AGENT).values_list(
                "prompt_version_id", flat=True
            )
        )
        assignment = ExperimentAssignment.objects.get(lead=lead)
        assert used == {assignment.version_id}
        assert Message.objects.filter(conversation__lead=lead, role=MessageRole.AGENT).count() == 20
    models = {r.json()["model"] for r in fake_openai.completion_requests()}
    assert models <= {"model-a", "model-b"}
