import pytest
from django.core.cache import cache
from rest_framework.test import APIClient

from tests.browser import browser, browser_page  # noqa: F401  (shared fixtures)
from tests.factories import (
    AgentMessageFactory,
    ConversationFactory,
    LeadFactory,
    MessageFactory,
    PromptVersionFactory,
    UserFactory,
)
from tests.fakes.fixtures import fake_manychat, fake_openai  # noqa: F401  (shared fixtures)


@pytest.fixture(autouse=True)
def _clear_cache():
    cache.clear()
    yield
    cache.clear()


@pytest.fixture(autouse=True)
def _burst_window_off(settings):
    """Tests answer each message at once: the project's 3 s burst window (AGENT_BURST_WINDOW_SECONDS) would
    hold every webhook 3 s. The burst tests (tests/inbox/test_bursts.py, tests/faults/test_bursts.py) set
    their own window."""
    settings.AGENT_BURST_WINDOW_SECONDS = 0


@pytest.fixture
def make_user(db):
    def make(role: str | None = None, **kwargs):
        username = kwargs.pop("username", None) or (f"{role}_user" if role else None)
        if username:
            kwargs["username"] = username
        return UserFactory(role=role, **kwargs)

    return make


@pytest.fixture
def admin_user_role(make_user):
    return make_user("admin")


@pytest.fixture
def manager(make_user):
    return make_user("manager")


@pytest.fixture
def operator(make_user):
    return make_user("operator")


@pytest.fixture
def viewer(make_user):
    return make_user("viewer")


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
