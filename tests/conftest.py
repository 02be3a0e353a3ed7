import pytest
from django.core.cache import cache

from tests.factories import UserFactory
from tests.fakes.fixtures import fake_manychat, fake_openai  # noqa: F401  (shared fixtures)


@pytest.fixture(autouse=True)
def _clear_cache():
    cache.clear()
    yield
    cache.clear()


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
