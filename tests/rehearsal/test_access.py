"""Who may do what on the rehearsal's pages and API; pinned query counts; the offline demo."""

import pytest
from django.urls import reverse

from agent.rehearsal import selectors, services
from agent.rehearsal.models import RehearsalPlay, Scenario

pytestmark = pytest.mark.django_db


def _played(version, against, repeats=1):
    run = services.rehearsal_run_create(version=version, against=against, repeats=repeats, schedule=False)
    for play_id in services.rehearsal_run_start(run_id=run.pk):
        services.rehearsal_play_execute(play_id=play_id)
    return run


@pytest.fixture
def world(both_sides, versions, make_scenario):
    scenario = make_scenario()
    run = _played(versions["good"], versions["active"])
    return {"scenario": scenario, "run": run, "play": RehearsalPlay.objects.filter(run=run).first()}


def _reads(world):
    return [
        "/api/rehearsal/scenarios/",
        f"/api/rehearsal/scenarios/{world['scenario'].pk}/",
        f"/api/rehearsal/runs/{world['run'].pk}/",
        f"/api/rehearsal/plays/{world['play'].pk}/",
        f"/api/prompt/versions/{world['run'].version_id}/rehearsal-gate/",
    ]


def _pages(world):
    return [
        reverse("dashboard:rehearsal"),
        reverse("dashboard:rehearsal_scenario_edit", args=[world["scenario"].pk]),
        reverse("dashboard:rehearsal_report", args=[world["run"].pk]),
        reverse("dashboard:rehearsal_play", args=[world["play"].pk]),
    ]


def test_anonymous_gets_nothing(client, api, world):
    for url in _reads(world):
        assert api().get(url).status_code in (401, 403), url
    for url in _pages(world) + [reverse("dashboard:rehearsal_scenario_new")]:
        response = client.get(url)
        assert response.status_code == 302 and "/accounts/login/" in response["Location"], url


@pytest.mark.parametrize("role", ["viewer", "operator", "manager", "admin"])
def test_every_role_reads(client, api, make_user, world, role):
    user = make_user(role)
    client.force_login(user)
    for url in _reads(world):
        assert api(user).get(url).status_code == 200, url
    for url in _pages(world):
        assert client.get(url).status_code == 200, url


def test_a_viewer_writes_nothing(client, api, viewer, world, versions):
    scenario = world["scenario"]
    assert (
        api(viewer)
        .patch(f"/api/rehearsal/scenarios/{scenario.pk}/", {"title": "x"}, format="json")
        .status_code
        == 403
    )
    assert (
        api(viewer).post("/api/rehearsal/scenarios/draft/", {"conversation_id": 1}, format="json").status_code
        == 403
    )
    client.force_login(viewer)
    assert (
        client.post(
            reverse("dashboard:rehearsal_scenario_edit", args=[scenario.pk]), {"title": "x"}
        ).status_code
        == 403
    )
    assert (
        client.post(reverse("dashboard:rehearsal_start"), {"version_id": versions["good"].pk}).status_code
        == 403
    )
    scenario.refresh_from_db()
    assert scenario.title == "Bakery owner"


def test_an_operator_edits_a_scenario_through_the_api(api, operator, world):
    scenario = world["scenario"]
    response = api(operator).patch(
        f"/api/rehearsal/scenarios/{scenario.pk}/", {"max_turns": 4, "is_active": False}, format="json"
    )
    assert response.status_code == 200 and response.json()["max_turns"] == 4
    scenario.refresh_from_db()
    assert scenario.max_turns == 4 and not scenario.is_active
    bad = api(operator).patch(
        f"/api/rehearsal/scenarios/{scenario.pk}/", {"checks": [{"kind": "nope"}]}, format="json"
    )
    assert bad.status_code == 400 and "checks" in bad.json()
    assert api(operator).get("/api/rehearsal/scenarios/999999/").status_code == 404


def test_the_report_costs_the_same_queries_whatever_the_number_of_scenarios(
    client, viewer, both_sides, versions, make_scenario, django_assert_max_num_queries
):
    client.force_login(viewer)
    make_scenario(title="one")
    small = _played(versions["good"], versions["active"])
    url = reverse("dashboard:rehearsal_report", args=[small.pk])
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as few:
        assert client.get(url).status_code == 200
    for number in range(4):
        make_scenario(title=f"more {number}")
    big = _played(versions["good"], versions["active"], repeats=2)
    with django_assert_max_num_queries(len(few)):
        assert client.get(reverse("dashboard:rehearsal_report", args=[big.pk])).status_code == 200
    with CaptureQueriesContext(connection) as api_queries:
        assert client.get(f"/api/rehearsal/runs/{big.pk}/").status_code == 200
    assert len(api_queries) <= len(few)


def test_the_scenario_list_costs_the_same_queries_whatever_its_length(
    client, viewer, make_scenario, django_assert_max_num_queries
):
    client.force_login(viewer)
    make_scenario(title="one")
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as few:
        client.get(reverse("dashboard:rehearsal"))
    for number in range(10):
        make_scenario(title=f"more {number}")
    with django_assert_max_num_queries(len(few)):
        client.get(reverse("dashboard:rehearsal"))


def test_offline_a_rehearsal_still_plays_and_judged_checks_need_a_person(settings, versions, make_scenario):
    settings.OPENAI_API_KEY = ""
    make_scenario(
        opening_messages=["How much does it cost?"],
        facts={"budget": "$2000"},
        checks=[{"kind": "budget_before_price"}, {"kind": "judged", "params": {"rubric": "Polite."}}],
    )
    run = _played(versions["good"], None, repeats=1)
    play = RehearsalPlay.objects.get(run=run)
    assert play.status == "done" and play.turns >= 1
    assert play.transcript[1]["role"] == "agent" and "budget" in play.transcript[1]["text"]
    judged = [r for r in play.check_results if r["judged"]]
    assert judged and all(r["passed"] is None for r in judged)
    assert Scenario.objects.count() == 1
    assert selectors.rehearsal_report(run=run).draft.judged["needs_person"] == 1
