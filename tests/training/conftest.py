import pytest
from rest_framework.test import APIClient

from tests.factories import (
    AgentMessageFactory,
    ConversationFactory,
    LeadFactory,
    MessageFactory,
    PromptVersionFactory,
)


@pytest.fixture
def prompt_version(db):
    return PromptVersionFactory(is_active=True)


@pytest.fixture
def make_conversation(db, prompt_version):
    """A lead with `exchanges` lead-message/agent-reply pairs; returns (conversation, [agent replies])."""

    def make(exchanges: int = 2, lead=None):
        conversation = ConversationFactory(lead=lead or LeadFactory())
        replies = []
        for i in range(exchanges):
            asked = MessageFactory(conversation=conversation, text=f"Lead question {i}")
            replies.append(
                AgentMessageFactory(
                    conversation=conversation,
                    in_reply_to=asked,
                    prompt_version=prompt_version,
                    text=f"Agent answer {i}",
                )
            )
        return conversation, replies

    return make


@pytest.fixture
def api():
    def make(user=None):
        client = APIClient()
        if user is not None:
            client.force_authenticate(user)
        return client

    return make
