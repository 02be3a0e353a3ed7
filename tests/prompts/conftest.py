from datetime import timedelta

import pytest
from django.utils import timezone

from leads.models import Message
from prompts import services
from tests.factories import AgentMessageFactory, ConversationFactory, PromptVersionFactory


@pytest.fixture
def reply():
    """An agent reply written by `version` in `conversation`, recorded the way the agent's task does it."""

    def make(*, version, conversation, at=None, latency_ms=850, prompt_tokens=120, completion_tokens=40):
        message = AgentMessageFactory(
            conversation=conversation,
            prompt_version=version,
            latency_ms=latency_ms,
            prompt_tokens=prompt_tokens,
            completion_tokens=completion_tokens,
        )
        if at is not None:
            # created_at is auto_now_add; move it to the moment the scenario needs.
            Message.objects.filter(pk=message.pk).update(created_at=at)
            message.refresh_from_db(fields=["created_at"])
        services.prompt_version_record_reply(message_id=message.pk)
        return message

    return make


@pytest.fixture
def versions(db):
    """v1 active, v2 and v3 drafts."""
    now = timezone.now()
    v1 = PromptVersionFactory(version=1, content="Line one\nLine two\n", is_active=True, activated_at=now)
    v2 = PromptVersionFactory(version=2, content="Line one\nLine 2, better\n", parent=v1)
    v3 = PromptVersionFactory(version=3, content="Completely different\n", parent=v2)
    return v1, v2, v3


@pytest.fixture
def conversation(db):
    return ConversationFactory()


@pytest.fixture
def ago():
    now = timezone.now()
    return lambda **kwargs: now - timedelta(**kwargs)
