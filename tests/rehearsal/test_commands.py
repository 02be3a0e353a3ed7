"""`manage.py rehearse` and `manage.py scenarios_from_conversations`; the judge's calibration."""

from datetime import timedelta
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.utils import timezone

from agent.rehearsal import selectors, services
from agent.rehearsal.models import JudgeCalibration, RehearsalPlay, RehearsalRun, Scenario
from leads.models import Conversation, LeadStatus
from tests.factories import AgentMessageFactory, ConversationFactory, LeadFactory, MessageFactory

pytestmark = pytest.mark.django_db


def test_rehearse_prints_scores_failures_and_the_gate(both_sides, versions, make_scenario, allowed_prices):
    make_scenario()
    out, err = StringIO(), StringIO()
    call_command(
        "rehearse", "--version", "3", "--against", "active", "--repeats", "3", stdout=out, stderr=err
    )
    text = out.getvalue()
    assert "v3: score 0% (spread 0%–0%" in text and "v1: score 100%" in text
    assert text.count("✗ Bakery owner (tested") == 3
    assert "Turn 2: quoted €79, which is not an allowed price (€49, €99)." in text
    assert "Gate: CLOSED" in text
    assert "6/6" in err.getvalue()  # the progress bar reached every play
    assert RehearsalRun.objects.get().status == "done"


def test_rehearse_marks_the_flaky_scenario(both_sides, versions, make_scenario, allowed_prices):
    make_scenario()
    out = StringIO()
    call_command("rehearse", "--version", "4", "--repeats", "3", stdout=out, stderr=StringIO())
    assert "~ Bakery owner (tested) is flaky: passed 2/3" in out.getvalue()


def test_rehearse_refuses_bad_input(versions, make_scenario):
    with pytest.raises(CommandError, match="no prompt version v99"):
        call_command("rehearse", "--version", "99", stdout=StringIO(), stderr=StringIO())
    with pytest.raises(CommandError, match="no scenario to rehearse"):
        call_command("rehearse", "--version", "2", stdout=StringIO(), stderr=StringIO())
    make_scenario()
    with pytest.raises(CommandError, match="repeats from 1 to 10"):
        call_command("rehearse", "--version", "2", "--repeats", "0", stdout=StringIO(), stderr=StringIO())
    assert RehearsalRun.objects.count() == 0


def test_rehearse_resume_plays_only_what_is_left(both_sides, versions, make_scenario):
    make_scenario()
    run = services.rehearsal_run_create(version=versions["good"], repeats=3, schedule=False)
    first, *rest = services.rehearsal_run_start(run_id=run.pk)
    services.rehearsal_play_execute(play_id=first)
    finished_at = RehearsalPlay.objects.get(pk=first).finished_at
    call_command("rehearse", "--resume", str(run.pk), stdout=StringIO(), stderr=StringIO())
    plays = RehearsalPlay.objects.filter(run=run)
    assert {p.status for p in plays} == {"done"} and {p.attempts for p in plays} == {1}
    assert RehearsalPlay.objects.get(pk=first).finished_at == finished_at
    run.refresh_from_db()
    assert run.status == "done"


def _conversation(*, status=LeadStatus.ENGAGED, needs_human=False, last="agent", age=timedelta(days=2)):
    lead = LeadFactory(status=status, needs_human=needs_human)
    conversation = ConversationFactory(lead=lead)
    asked = MessageFactory(conversation=conversation, text=f"How much is it? ({lead.pk})")
    if last == "agent":
        AgentMessageFactory(conversation=conversation, in_reply_to=asked, text="It depends, what budget?")
    Conversation.objects.filter(pk=conversation.pk).update(last_message_at=timezone.now() - age)
    return conversation


def test_scenarios_from_conversations_picks_lost_handed_off_and_stalled(both_sides):
    lost = _conversation(status=LeadStatus.LOST, last="lead", age=timedelta(hours=1))
    handed = _conversation(needs_human=True, last="lead", age=timedelta(hours=1))
    stalled = _conversation(age=timedelta(days=3))
    _conversation(age=timedelta(hours=1))  # the agent just wrote: not stalled yet
    _conversation(status=LeadStatus.QUALIFIED, age=timedelta(days=3))  # went well
    _conversation(status=LeadStatus.LOST, age=timedelta(days=60))  # too old
    out, err = StringIO(), StringIO()
    call_command("scenarios_from_conversations", "--since", "30d", "--limit", "30", stdout=out, stderr=err)
    assert "3 conversations found; 3 scenarios created" in out.getvalue()
    assert "3/3" in err.getvalue()
    by_source = {s.source_conversation_id: s for s in Scenario.objects.all()}
    assert set(by_source) == {lost.pk, handed.pk, stalled.pk}
    assert "lost" in by_source[lost.pk].tags and "handoff" in by_source[handed.pk].tags
    assert "stalled" in by_source[stalled.pk].tags
    assert by_source[stalled.pk].opening_messages == [f"How much is it? ({stalled.lead_id})"]
    # A second pass finds nothing new: used conversations are skipped.
    out = StringIO()
    call_command("scenarios_from_conversations", stdout=out, stderr=StringIO())
    assert "0 conversations found" in out.getvalue()


def test_scenarios_from_conversations_refuses_a_bad_span():
    with pytest.raises(CommandError, match="30d, 12h or 2w"):
        call_command(
            "scenarios_from_conversations", "--since", "a month", stdout=StringIO(), stderr=StringIO()
        )


# --- The judge's calibration ---------------------------------------------------------------------------

RUBRIC = "The agent is polite and never pushy."


def _calibrate(*labels: tuple[str, bool]) -> None:
    for text, expected in labels:
        JudgeCalibration.objects.create(
            rubric=RUBRIC,
            transcript=[{"role": "lead", "text": "Hi"}, {"role": "agent", "text": text}],
            expected_pass=expected,
        )


def _judged_run(versions, make_scenario):
    make_scenario(checks=[{"kind": "judged", "params": {"rubric": RUBRIC}}])
    run = services.rehearsal_run_create(version=versions["good"], repeats=1, schedule=False)
    for play_id in services.rehearsal_run_start(run_id=run.pk):
        services.rehearsal_play_execute(play_id=play_id)
    run.refresh_from_db()
    return run


def test_a_judge_that_agrees_with_the_calibration_set_counts(both_sides, versions, make_scenario):
    _calibrate(("Happy to help!", True), ("BUY NOW!!!", False))
    run = _judged_run(versions, make_scenario)
    assert run.judge_trusted is True and run.judge_agreement == 1.0 and run.judge_calibration_size == 2
    report = selectors.rehearsal_report(run=run)
    assert report.draft.judged == {"passed": 1, "failed": 0, "needs_person": 0}
    assert report.draft.asserted == {"passed": 0, "failed": 0}


def test_a_judge_that_disagrees_never_passes_a_check_it_needs_a_person(
    fake_openai, versions, make_scenario, settings
):
    fake_openai.play_rehearsal(judge=lambda data: (True, "Looks fine."))  # passes everything
    _calibrate(("Happy to help!", True), ("BUY NOW!!!", False), ("Sign today or lose it!!!", False))
    settings.REHEARSAL_JUDGE_AGREEMENT = 0.8
    run = _judged_run(versions, make_scenario)
    assert run.judge_trusted is False and run.judge_agreement == pytest.approx(1 / 3)
    play = RehearsalPlay.objects.get(run=run)
    (result,) = play.check_results
    assert result["passed"] is None and result["reason"].startswith("Needs a person")
    assert play.judge_calls == 0  # an untrusted judge is not asked
    assert selectors.rehearsal_report(run=run).draft.judged == {"passed": 0, "failed": 0, "needs_person": 1}


def test_without_a_calibration_set_judged_checks_need_a_person(both_sides, versions, make_scenario):
    run = _judged_run(versions, make_scenario)
    assert run.judge_trusted is False and run.judge_calibration_size == 0
    assert RehearsalPlay.objects.get(run=run).check_results[0]["passed"] is None
