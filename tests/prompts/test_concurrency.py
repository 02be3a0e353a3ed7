"""Racing activations on PostgreSQL: real row locks and the partial unique index decide, not luck."""

import pytest
from django.db import connection

from leads.models import Activity
from prompts import services
from prompts.models import PromptVersion
from tests.concurrency import race
from tests.factories import PromptVersionFactory

# Roles survive the flush: leads.apps re-syncs them on post_migrate.
pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def _postgres_only():
    if connection.vendor != "postgresql":
        pytest.skip("needs PostgreSQL row locks")


_race = race  # each call in its own thread and database connection, released together


def _check_one_active_and_a_consistent_history(start_active: int | None, racers: set[int]) -> None:
    active = list(PromptVersion.objects.filter(is_active=True).values_list("version", flat=True))
    assert len(active) == 1 and active[0] in racers
    chain = [a.data for a in Activity.objects.filter(verb="prompt.activated").order_by("id")]
    assert {row["version"] for row in chain} == racers
    # Serialised: the first names the version active at the start, the second names the first.
    assert chain[0]["previous_version"] == start_active
    assert chain[1]["previous_version"] == chain[0]["version"]
    assert chain[1]["version"] == active[0]


@pytest.mark.parametrize("attempt", range(5))
def test_two_activations_racing_leave_exactly_one_active(make_user, attempt):
    manager, admin = make_user("manager"), make_user("admin")
    PromptVersionFactory(version=1, is_active=True)
    v2, v3 = PromptVersionFactory(version=2), PromptVersionFactory(version=3)
    outcomes = _race(
        lambda: services.prompt_version_activate(version=v2, user=manager),
        lambda: services.prompt_version_activate(version=v3, user=admin),
    )
    assert not [o for o in outcomes if isinstance(o, Exception)], outcomes
    _check_one_active_and_a_consistent_history(1, {2, 3})


@pytest.mark.parametrize("attempt", range(3))
def test_two_first_activations_racing_with_nothing_active(make_user, attempt):
    manager = make_user("manager")
    v1, v2 = PromptVersionFactory(version=1), PromptVersionFactory(version=2)
    outcomes = _race(
        lambda: services.prompt_version_activate(version=v1, user=manager),
        lambda: services.prompt_version_activate(version=v2, user=manager),
    )
    assert not [o for o in outcomes if isinstance(o, Exception)], outcomes
    _check_one_active_and_a_consistent_history(None, {1, 2})


def test_deploys_racing_get_distinct_numbers_and_one_active(make_user):
    manager = make_user("manager")
    PromptVersionFactory(version=1, is_active=True)
    outcomes = _race(
        *[(lambda n=n: services.prompt_version_deploy(content=f"text {n}", user=manager)) for n in range(4)]
    )
    assert not [o for o in outcomes if isinstance(o, Exception)], outcomes
    assert sorted(PromptVersion.objects.values_list("version", flat=True)) == [1, 2, 3, 4, 5]
    assert PromptVersion.objects.filter(is_active=True).count() == 1
    assert Activity.objects.filter(verb="prompt.activated").count() == 4
