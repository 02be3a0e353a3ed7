import pytest
from django.utils import timezone

from tests.factories import PromptVersionFactory


@pytest.fixture
def other_manager(make_user):
    return make_user("manager", username="second_manager")


@pytest.fixture
def live(db):
    """v1 active (activated a while ago), v2 a draft."""
    v1 = PromptVersionFactory(
        version=1,
        content="Be helpful.\n",
        is_active=True,
        activated_at=timezone.now(),
        model_name="gpt-6-luna",
    )
    v2 = PromptVersionFactory(version=2, content="Be helpful and ask for the budget.\n", parent=v1)
    return v1, v2


# The browser tests share the e2e harness: watched pages (a clean console is required), the demo data.
from tests.e2e.conftest import demo, new_page, page, pytest_runtest_call, shot  # noqa: E402, F401
