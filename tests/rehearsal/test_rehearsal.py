"""A rehearsal end to end on the fake model (real HTTP): plays, checks, the report, flakiness, the gate."""

import pytest

from agent.rehearsal import checks, selectors, services, simulator
from agent.rehearsal.models import PlayEnd, RehearsalPlay, RehearsalRun, RehearsalStatus
from leads.models import Lead, Message
from tests.fakes import fake_openai as fakes

pytestmark = pytest.mark.django_db


def _run(version, against=None, repeats=3):
    run = services.rehearsal_run_create(version=version, against=against, repeats=repeats, schedule=False)
    for play_id in services.rehearsal_run_start(run_id=run.pk):
        assert services.rehearsal_play_execute(play_id=play_id) == "done"
    run.refresh_from_db()
    return run


def test_the_fake_routes_on_the_apps_own_markers():
    assert simulator.LEAD_INSTRUCTIONS.startswith(fakes.REHEARSAL_LEAD_MARKER)
    assert checks.JUDGE_INSTRUCTIONS.startswith(fakes.REHEARSAL_JUDGE_MARKER)
    assert services.DRAFT_INSTRUCTIONS.startswith(fakes.REHEARSAL_DRAFT_MARKER)


def test_a_good_draft_plays_each_scenario_three_times_and_writes_nothing_to_leads(
    both_sides, versions, make_scenario, allowed_prices
):
    make_scenario()
    run = _run(versions["good"], against=versions["active"])
    assert run.status == RehearsalStatus.DONE
    plays = list(RehearsalPlay.objects.filter(run=run, side="draft").order_by("repeat"))
    assert [p.repeat for p in plays] == [1, 2, 3]
    for play in plays:
        assert play.passed is True
        assert play.ended == PlayEnd.QUALIFIED
        assert [row["role"] for row in play.transcript] == ["lead", "agent"] * 3
        assert play.transcript[0]["text"] == "Hi, how much is your program?"
        assert play.agent_calls == 3 and play.lead_calls == 2
    # Who said what: the lead's second line is the fact it was asked for, worded for its take.
    assert plays[0].transcript[2]["text"] == "My budget is 2k a month."
    assert plays[2].transcript[2]["text"] == "Well, budget: 2k a month."
    assert Lead.objects.count() == 0 and Message.objects.count() == 0
    report = selectors.rehearsal_report(run=run)
    assert report.draft.score == 1.0 and report.draft.spread == (1.0, 1.0)
    assert report.draft.tokens > 0 and report.draft.cost_usd is not None
    assert report.gate.passed, report.gate.reasons


def test_the_agent_side_sends_exactly_the_webhook_turns_model_input(both_sides, versions, make_scenario):
    scenario = make_scenario(max_turns=1)
    _run(versions["good"], repeats=1)
    agent_calls = [
        r.json()["messages"]
        for r in both_sides.completion_requests()
        if fakes.REHEARSAL_LEAD_MARKER not in r.body.decode()
    ]
    assert len(agent_calls) == 1
    system = agent_calls[0][0]["content"]
    assert system.startswith(versions["good"].content)
    assert "Answer with one JSON object" in system  # the output contract, as the webhook sends it
    assert agent_calls[0][-1] == {"role": "user", "content": scenario.opening_messages[0]}


def test_a_price_inventing_draft_fails_allowed_prices_on_the_exact_turn_in_every_run(
    both_sides, versions, make_scenario, allowed_prices
):
    make_scenario()
    run = _run(versions["inventor"], against=versions["active"])
    report = selectors.rehearsal_report(run=run)
    (row,) = report.rows
    assert row.draft.pass_rate == 0.0 and not row.draft.flaky
    for cell in row.draft.plays:
        failed = {f["name"]: f for f in cell.failed}
        assert failed["Allowed prices"]["turn"] == 2
        assert failed["Allowed prices"]["reason"] == (
            "Turn 2: quoted €79, which is not an allowed price (€49, €99)."
        )
    assert row.baseline.pass_rate == 1.0
    assert not report.gate.passed
    assert any("'never' check failed in 3 play(s)" in reason for reason in report.gate.reasons)
    # The transcript marks the failed check beside the agent's line of that turn.
    play = RehearsalPlay.objects.filter(run=run, side="draft").first()
    rows = selectors.play_transcript_rows(play=play)
    marked = [r for r in rows if r["failed_checks"]]
    assert [(r["turn"], r["role"]) for r in marked] == [(2, "agent")]
    assert "€79" in marked[0]["text"]


def test_a_draft_that_fails_one_time_in_three_is_flaky(both_sides, versions, make_scenario, allowed_prices):
    make_scenario(title="A")
    make_scenario(title="B", opening_messages=["Hello! Price?"])
    run = _run(versions["flaky"], against=versions["active"])
    report = selectors.rehearsal_report(run=run)
    for row in report.rows:
        assert [cell.passed for cell in row.draft.plays] == [True, True, False]
        assert row.draft.flaky and row.draft.pass_rate == pytest.approx(2 / 3)
        assert not row.baseline.flaky
    assert report.draft.flaky == 2
    assert report.draft.scores == [1.0, 1.0, 0.0]
    assert report.draft.spread == (0.0, 1.0) and report.draft.stdev == pytest.approx(0.4714, abs=1e-3)


def test_the_gate_needs_a_finished_rehearsal_of_those_two_versions(both_sides, versions, make_scenario):
    make_scenario()
    gate = selectors.rehearsal_gate(draft=versions["good"], against=versions["active"])
    assert not gate.passed and gate.reasons == ["No finished rehearsal of v2 against v1."]
    _run(versions["good"], against=versions["active"], repeats=1)
    assert selectors.rehearsal_gate(draft=versions["good"], against=versions["active"]).passed


def test_the_gate_margin_is_configurable(both_sides, versions, make_scenario, settings):
    make_scenario(checks=[{"kind": "allowed_prices", "params": {"prices": ["€49"]}}])  # not a 'never' check
    _run(versions["flaky"], against=versions["active"])
    settings.REHEARSAL_GATE_MARGIN = 0.5
    assert selectors.rehearsal_gate(draft=versions["flaky"], against=versions["active"]).passed
    settings.REHEARSAL_GATE_MARGIN = 0.1
    gate = selectors.rehearsal_gate(draft=versions["flaky"], against=versions["active"])
    assert not gate.passed and "more than 10% below" in gate.reasons[0]


def test_finished_plays_are_not_played_again(both_sides, versions, make_scenario):
    make_scenario()
    run = _run(versions["good"], repeats=2)
    calls = both_sides.calls
    assert services.rehearsal_run_resume(run_id=run.pk) == []
    for play in RehearsalPlay.objects.filter(run=run):
        assert services.rehearsal_play_execute(play_id=play.pk) == "skipped"
        assert play.attempts == 1
    assert both_sides.calls == calls


def test_a_play_whose_model_fails_is_a_failed_play_with_the_reason(fake_openai, versions, make_scenario):
    make_scenario(max_turns=2)
    fake_openai.set_default(fake_openai.error(500))
    run = _run(versions["good"], repeats=1)
    play = RehearsalPlay.objects.get(run=run)
    assert play.ended == PlayEnd.ERROR and play.passed is False
    assert play.check_results[0]["name"] == "The conversation completed"
    assert "did not answer" in play.check_results[0]["reason"]


def test_ends_on_handoff_when_the_lead_asks_for_a_person(both_sides, versions, make_scenario):
    make_scenario(
        opening_messages=["Can I talk to a real person please?"], checks=[{"kind": "handoff_when_asked"}]
    )
    run = _run(versions["good"], repeats=1)
    play = RehearsalPlay.objects.get(run=run)
    assert play.ended == PlayEnd.HANDED_OFF and play.turns == 1 and play.passed


def test_runs_validate_their_input(versions, make_scenario):
    with pytest.raises(Exception) as error:
        services.rehearsal_run_create(version=versions["good"], schedule=False)
    assert "scenario_ids" in error.value.message_dict
    make_scenario()
    with pytest.raises(Exception) as error:
        services.rehearsal_run_create(version=versions["good"], repeats=0, schedule=False)
    assert "repeats" in error.value.message_dict
    with pytest.raises(Exception) as error:
        services.rehearsal_run_create(version=versions["good"], against=versions["good"], schedule=False)
    assert "against" in error.value.message_dict
    assert RehearsalRun.objects.count() == 0
