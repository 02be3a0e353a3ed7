import pytest
from rest_framework.authtoken.models import Token

from leads import roles
from tests.factories import (
    AgentMessageFactory,
    ConversationFactory,
    MessageFactory,
    PromptVersionFactory,
    TrainingExampleFactory,
)

SECRET = "hardening-webhook-secret"
ROLES = (None, *roles.ROLES)  # None: anonymous


@pytest.fixture
def webhook_secret(settings):
    settings.MANYCHAT_WEBHOOK_SECRET = SECRET
    settings.MANYCHAT_WEBHOOK_SECRET_PREVIOUS = ""
    settings.AGENT_ASYNC_MODE = False
    settings.AGENT_HOLDING_TEXT = ""
    settings.MANYCHAT_API_TOKEN = ""
    return SECRET


@pytest.fixture
def world(make_user):
    """One row of everything, owned by the operator, so every detail URL has something to find."""
    users = {role: make_user(role) for role in roles.ROLES}
    tokens = {role: Token.objects.create(user=user).key for role, user in users.items()}
    conversation = ConversationFactory()
    inbound = MessageFactory(conversation=conversation, text="How much is it?")
    AgentMessageFactory(conversation=conversation, in_reply_to=inbound, text="It is 30 a month.")
    active = PromptVersionFactory(is_active=True)
    draft = PromptVersionFactory()
    example = TrainingExampleFactory(submitted_by=users[roles.OPERATOR], conversation=conversation)
    return {
        "users": users,
        "tokens": tokens,
        "lead": conversation.lead,
        "conversation": conversation,
        "active": active,
        "draft": draft,
        "example": example,
    }


@pytest.fixture(autouse=True)
def _fast_passwords(settings):
    # Five users per test: PBKDF2 at full strength would dominate the suite's run time.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
