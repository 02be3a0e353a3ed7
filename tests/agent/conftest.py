import json

import pytest
from django.urls import reverse

from prompts.models import PromptVersion
from tests.factories import PromptVersionFactory

SECRET = "test-webhook-secret"


@pytest.fixture(autouse=True)
def _agent_settings(settings):
    settings.MANYCHAT_WEBHOOK_SECRET = SECRET
    settings.MANYCHAT_WEBHOOK_SECRET_PREVIOUS = "test-previous-secret"
    settings.AGENT_ASYNC_MODE = False
    settings.AGENT_HOLDING_TEXT = ""
    settings.AGENT_REPLY_DEADLINE_SECONDS = 8.0
    settings.CELERY_TASK_ALWAYS_EAGER = True
    settings.MANYCHAT_API_TOKEN = ""
    # Celery caches its configuration: make tasks run in process even when a broker is configured.
    from config.celery import app

    eager = app.conf.task_always_eager
    app.conf.task_always_eager = True
    yield
    app.conf.task_always_eager = eager


@pytest.fixture
def active_prompt(db) -> PromptVersion:
    return PromptVersionFactory(content="You are Ava, a sales assistant for Acme Gyms.", is_active=True)


@pytest.fixture
def webhook(client):
    """POST a body to the webhook with the secret; returns the response."""

    def post(body, *, secret: str | None = SECRET, raw: bytes | None = None, **headers):
        if secret is not None and "HTTP_AUTHORIZATION" not in headers:
            headers.setdefault("HTTP_X_WEBHOOK_SECRET", secret)
        data = raw if raw is not None else json.dumps(body)
        return client.post(
            reverse("webhooks:manychat"), data=data, content_type="application/json", **headers
        )

    return post


def flat_body(subscriber_id="9001", text="Hi, how much is a membership?", **extra):
    return {
        "subscriber_id": subscriber_id,
        "text": text,
        "channel": "instagram",
        "first_name": "Mia",
        **extra,
    }
