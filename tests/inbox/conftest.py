import json
from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from leads.models import Channel, Lead
from tests.factories import AgentMessageFactory, ConversationFactory, LeadFactory, MessageFactory

SECRET = "inbox-test-webhook-secret"


@pytest.fixture(autouse=True)
def _inbox_settings(settings):
    settings.MANYCHAT_WEBHOOK_SECRET = SECRET
    settings.AGENT_ASYNC_MODE = False
    settings.AGENT_HOLDING_TEXT = ""
    settings.CELERY_TASK_ALWAYS_EAGER = True
    settings.AGENT_WEBHOOK_RATE_LIMIT = ""
    from config.celery import app

    eager = app.conf.task_always_eager
    app.conf.task_always_eager = True
    yield
    app.conf.task_always_eager = eager


@pytest.fixture
def webhook(client):
    def post(subscriber_id: str, text: str, **extra):
        body = {"subscriber_id": subscriber_id, "text": text, "channel": "instagram", **extra}
        return client.post(
            reverse("webhooks:manychat"),
            data=json.dumps(body),
            content_type="application/json",
            HTTP_X_WEBHOOK_SECRET=SECRET,
        )

    return post


@pytest.fixture
def lead_with_reply(db, prompt_version):
    """A lead whose last agent reply handed it to a person: (lead, lead message, agent reply)."""
    lead = LeadFactory(
        first_name="Sofia", last_name="Marchetti", username="sofia.m", channel=Channel.INSTAGRAM
    )
    conversation = ConversationFactory(lead=lead)
    asked = MessageFactory(conversation=conversation, text="Can I talk to a real person about the refund?")
    reply = AgentMessageFactory(
        conversation=conversation,
        in_reply_to=asked,
        prompt_version=prompt_version,
        text="Sure, connecting you.",
    )
    Lead.objects.filter(pk=lead.pk).update(
        needs_human=True, bot_paused=True, handoff_reason="asked for a person", waiting_since=timezone.now()
    )
    lead.refresh_from_db()
    return lead, asked, reply


def waiting(minutes: int):
    return timezone.now() - timedelta(minutes=minutes)
