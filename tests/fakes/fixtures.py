"""pytest fixtures for the fake outside world; tests/conftest.py imports them for every test.

`fake_openai` points the app at a fresh fake chat-completions server (OPENAI_API_KEY set, one retry,
short backoff budget); `fake_manychat` points it at a fake Page API with a token. Both are function-scoped
and reset per test.
"""

import pytest

from tests.fakes.fake_manychat import FakeManyChat
from tests.fakes.fake_openai import FakeOpenAI


@pytest.fixture
def fake_openai(settings):
    with FakeOpenAI() as fake:
        settings.OPENAI_API_KEY = "sk-test-fake"
        settings.OPENAI_BASE_URL = fake.base_url
        settings.OPENAI_MAX_RETRIES = 1
        settings.OPENAI_TIMEOUT_SECONDS = 5.0
        yield fake


@pytest.fixture
def fake_manychat(settings):
    from agent import manychat_throttle

    with FakeManyChat() as fake:
        settings.MANYCHAT_API_BASE_URL = fake.url
        settings.MANYCHAT_API_TOKEN = fake.token
        settings.MANYCHAT_API_TIMEOUT_SECONDS = 5.0
        settings.MANYCHAT_THROTTLE_REDIS_URL = ""
        manychat_throttle.throttle().clear()  # no queue left over from another test
        yield fake
