"""The rehearsal pages and API: scenarios by hand and from a conversation, a run from the prompt page, the
report, a play's transcript; permissions and bad input."""

import pytest
from django.urls import reverse

from agent.rehearsal import services
from agent.rehearsal.models import RehearsalPlay, RehearsalRun, Scenario
from tests.factories import ConversationFactory, MessageFactory

pytestmark = pytest.mark.django_db

FORM = {
    "title": "Gym skeptic",
    "persona": "A runner who thinks gyms are overpriced.",
    "goal": "Find a cheap plan.",
    "opening_messages": "Hey\nHow much?",
    "channel": "whatsapp",
    "facts": "budget: 30 a month\ntimeline: now",
    "max_turns": "4",
    "checks": '[{"kind": "max_questions", "params": {"max": 1}}]',
    "tags": "Pricing, objection",
}


def _played(version, against, repeats=1):
    run = services.rehearsal_run_create(version=version, against=against, repeats=repeats, schedule=False)
    for play_id in services.rehearsal_run_start(run_id=run.pk):
        services.rehearsal_play_execute(play_id=play_id)
    return run


def test_an_operator_creates_a_scenario_by_hand(client, operator):
    client.force_login(operator)
    response = client.post(reverse("dashboard:rehearsal_scenario_new"), FORM)
    assert response.status_code == 302
    scenario = Scenario.objects.get()
    assert scenario.opening_messages == ["Hey", "How much?"]
    assert scenario.facts == {"budget": "30 a month", "timeline": "now"}
    assert scenario.tags == ["objection", "pricing"] and scenario.max_turns == 4
    assert scenario.checks == [{"kind": "max_questions", "params": {"max": 1}, "never": False}]
    assert scenario.created_by == operator
    page = client.get(reverse("dashboard:rehearsal")).content.decode()
    assert "Gym skeptic" in page


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("title", "", "title"),
        ("max_turns", "50", "from 1 to 20"),
        ("checks", '[{"kind": "teleport"}]', "Unknown check kind"),
        ("checks", "not json", "JSON list"),
        ("facts", "no colon here", "name: value"),
        ("channel", "fax", "channel"),
    ],
)
def test_a_bad_scenario_is_refused_naming_the_field_and_nothing_is_saved(
    client, operator, field, value, message
):
    client.force_login(operator)
    response = client.post(reverse("dashboard:rehearsal_scenario_new"), {**FORM, field: value})
    assert response.status_code in (200, 400)
    assert message in response.content.decode() or field in response.content.decode()
    assert Scenario.objects.count() == 0


def test_a_viewer_may_read_but_not_create(client, viewer):
    client.force_login(viewer)
    assert client.get(reverse("dashboard:rehearsal")).status_code == 200
    assert client.post(reverse("dashboard:rehearsal_scenario_new"), FORM).status_code == 403
    assert Scenario.objects.count() == 0


def test_the_lead_page_drafts_a_scenario_from_the_conversation(client, operator, both_sides):
    conversation = ConversationFactory()
    MessageFactory(conversation=conversation, text="Hi, is the program worth 2k a month?")
    client.force_login(operator)
    lead_page = client.get(reverse("dashboard:lead_detail", args=[conversation.lead_id])).content.decode()
    assert f"?conversation={conversation.pk}" in lead_page
    form = client.get(reverse("dashboard:rehearsal_scenario_new"), {"conversation": conversation.pk})
    html = form.content.decode()
    assert "Drafted by the model" in html
    assert "Hi, is the program worth 2k a month?" in html  # the opening, drafted from the thread
    assert "budget: 2k a month" in html
    assert Scenario.objects.count() == 0  # nothing saved until the person saves the draft


def test_the_api_drafts_creates_and_validates(api, operator, viewer, both_sides):
    conversation = ConversationFactory()
    MessageFactory(conversation=conversation, text="Do you do weekend classes?")
    client = api(operator)
    draft = client.post(
        "/api/rehearsal/scenarios/draft/", {"conversation_id": conversation.pk}, format="json"
    )
    assert draft.status_code == 200
    assert draft.json()["opening_messages"] == ["Do you do weekend classes?"]
    created = client.post("/api/rehearsal/scenarios/", draft.json(), format="json")
    assert created.status_code == 201, created.json()
    assert created.json()["source_conversation_id"] == conversation.pk
    bad = client.post("/api/rehearsal/scenarios/", {**draft.json(), "max_turns": 99}, format="json")
    assert bad.status_code == 400 and "max_turns" in bad.json()
    missing = client.post("/api/rehearsal/scenarios/draft/", {"conversation_id": 999999}, format="json")
    assert missing.status_code == 404 and "conversation_id" in missing.json()
    assert api(viewer).post("/api/rehearsal/scenarios/", draft.json(), format="json").status_code == 403
    assert api(viewer).get("/api/rehearsal/scenarios/").json()["count"] == 1


def test_the_report_and_the_transcript_show_the_failed_turn(
    client, viewer, both_sides, versions, make_scenario, allowed_prices
):
    make_scenario()
    run = _played(versions["inventor"], versions["active"], repeats=2)
    client.force_login(viewer)
    report = client.get(reverse("dashboard:rehearsal_report", args=[run.pk])).content.decode()
    assert "Release gate: closed" in report
    assert "Turn 2: quoted €79, which is not an allowed price (€49, €99)." in report
    play = RehearsalPlay.objects.filter(run=run, side="draft").first()
    assert reverse("dashboard:rehearsal_play", args=[play.pk]) in report
    page = client.get(reverse("dashboard:rehearsal_play", args=[play.pk])).content.decode()
    assert "Simulated lead" in page and "Agent (v3)" in page
    assert "✗ Allowed prices: Turn 2: quoted €79" in page


def test_the_report_api_and_the_gate_api(api, viewer, both_sides, versions, make_scenario, allowed_prices):
    make_scenario()
    run = _played(versions["good"], versions["active"])
    data = api(viewer).get(f"/api/rehearsal/runs/{run.pk}/").json()
    assert data["run"]["status"] == "done" and data["progress"] == {
        "total": 2,
        "done": 2,
        "failed": 0,
        "running": 0,
    }
    assert data["draft"]["score"] == 1.0 and data["baseline"]["score"] == 1.0
    assert data["gate"]["passed"] is True
    assert {c["name"] for c in data["draft"]["checks"]} == {
        "Allowed prices",
        "Asked for the budget before quoting",
    }
    play_id = data["scenarios"][0]["draft"]["plays"][0]["id"]
    play = api(viewer).get(f"/api/rehearsal/plays/{play_id}/").json()
    assert play["transcript"][0] == {
        "turn": 1,
        "role": "lead",
        "text": "Hi, how much is your program?",
        "failed_checks": [],
    }
    gate = api(viewer).get(f"/api/prompt/versions/{versions['good'].pk}/rehearsal-gate/").json()
    assert gate["passed"] is True and gate["run_id"] == run.pk
    assert api(viewer).get("/api/rehearsal/runs/999999/").status_code == 404


def test_rehearse_from_the_api_starts_a_run_beside_the_active_version(
    api, operator, viewer, versions, make_scenario, settings
):
    make_scenario()
    settings.CELERY_TASK_ALWAYS_EAGER = False  # queued on commit; nothing to run it here
    response = api(operator).post(
        f"/api/prompt/versions/{versions['good'].pk}/rehearse/", {"repeats": 2}, format="json"
    )
    assert response.status_code == 202, response.json()
    run = RehearsalRun.objects.get()
    assert run.against_version == versions["active"] and run.total == 4
    assert (
        api(operator)
        .post(f"/api/prompt/versions/{versions['good'].pk}/rehearse/", {"repeats": 11}, format="json")
        .status_code
        == 400
    )
    assert (
        api(viewer)
        .post(f"/api/prompt/versions/{versions['good'].pk}/rehearse/", {}, format="json")
        .status_code
        == 403
    )


def test_the_prompt_page_has_the_rehearse_button_and_the_latest_runs(
    client, manager, versions, make_scenario, both_sides
):
    make_scenario()
    client.force_login(manager)
    page = client.get(reverse("dashboard:prompt_editor")).content.decode()
    assert 'data-testid="rehearse"' in page and "Rehearse v4" in page
    response = client.post(
        reverse("dashboard:rehearsal_start"), {"version_id": versions["good"].pk, "repeats": "1"}
    )
    run = RehearsalRun.objects.get()
    assert response.status_code == 302 and response["Location"] == reverse(
        "dashboard:rehearsal_report", args=[run.pk]
    )


def test_a_scenario_left_invalid_in_the_admin_still_opens_for_editing(client, operator, make_scenario):
    scenario = make_scenario()
    Scenario.objects.filter(pk=scenario.pk).update(checks=[{"kind": "teleport"}], facts=["not", "a", "dict"])
    client.force_login(operator)
    response = client.get(reverse("dashboard:rehearsal_scenario_edit", args=[scenario.pk]))
    assert response.status_code == 200
    assert "teleport" in response.content.decode()
