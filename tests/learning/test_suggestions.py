"""Suggest improvements (issue #18, Done when 3): 20 approved corrections in 3 themes on the fake model."""

import json
from datetime import timedelta

import pytest
from django.core.management import call_command
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from agent.suggestions.flow import Edit, SuggestionError, edit_apply, suggestions_generate
from prompts.models import PromptVersion
from tests.factories import PromptVersionFactory, TrainingExampleFactory
from training.models import ExampleStatus
from training.review.fields import DECIDED_AT, DECIDED_BY
from training.suggestions.models import ImprovementSuggestion, SuggestionStatus
from training.suggestions.selectors import improvement_themes

pytestmark = pytest.mark.django_db

THEMES = {
    "refund": (
        [
            "Can I get a refund if I quit?",
            "Do you refund the deposit?",
            "Is the program refundable?",
            "What is your refund policy?",
            "Refund possible after two weeks?",
            "Will you refund me if I hate it?",
            "How do refunds work here?",
        ],
        "Explain the refund policy clearly.",
        "Yes: a full refund within 14 days, no questions asked.",
    ),
    "installments": (
        [
            "Can I pay in installments?",
            "Is there a payment plan?",
            "Can I split the payment?",
            "Monthly installments possible?",
            "Do you offer a payment plan for the course?",
            "Could I pay it in parts?",
            "Payment plan available?",
        ],
        "Offer the installment payment plan.",
        "Yes: a payment plan of 3 monthly installments of $100 each.",
    ),
    "schedule": (
        [
            "What time are the live calls?",
            "When is the weekly call?",
            "Which day are the live sessions?",
            "Live call schedule?",
            "At what hour is the group call?",
            "When do the calls happen?",
        ],
        "Give the live call schedule.",
        "The live calls are every Tuesday at 6pm CET, recorded for replay.",
    ),
}
RULES = {
    "refund": "RULE-REFUND: state the 14-day refund.",
    "installments": "RULE-PLAN: offer 3 installments.",
    "schedule": "RULE-BREAK: answer every lead with BROKEN.",
}


@pytest.fixture
def corrections(manager):
    active = PromptVersionFactory(
        content="You are Ava, a sales assistant.",
        is_active=True,
        activated_at=timezone.now() - timedelta(days=3),
    )
    made = {}
    for theme, (questions, feedback, expected) in THEMES.items():
        made[theme] = [
            TrainingExampleFactory(
                status=ExampleStatus.APPROVED,
                **{DECIDED_AT: timezone.now(), DECIDED_BY: manager},
                example_type="correction",
                user_message=q,
                ai_response="Let me check.",
                expected_response=expected,
                feedback=feedback,
            )
            for q in questions
        ]
    good = [
        TrainingExampleFactory(
            status=ExampleStatus.APPROVED,
            **{DECIDED_AT: timezone.now(), DECIDED_BY: manager},
            example_type="good",
            user_message=f"Hi there number {i}",
            ai_response="Hi! What brings you here?",
            feedback="Warm.",
        )
        for i in range(3)
    ]
    # Decided before the active version's release: not part of any theme.
    old = TrainingExampleFactory(
        status=ExampleStatus.APPROVED,
        **{DECIDED_AT: active.activated_at - timedelta(days=1)},
        example_type="correction",
        user_message="Can I get a refund?",
        ai_response="No.",
        expected_response="Yes, within 14 days.",
        feedback="Explain the refund policy.",
    )
    return active, made, good, old


def _script(fake_openai, made):
    expected_by_question = {e.user_message: e.expected_response for group in made.values() for e in group}

    def suggest(request):
        data = json.loads(request.json()["messages"][1]["content"])
        theme = next(
            key
            for key, (questions, _, _) in THEMES.items()
            if any(c["lead_message"] in questions for c in data["corrections"])
        )
        return fake_openai.completion({"find": "", "replace": RULES[theme], "rationale": f"Covers {theme}."})

    def judge(request):
        data = json.loads(request.json()["messages"][1]["content"])
        passed = data["candidate_reply"] != "BROKEN"
        return fake_openai.completion({"pass": passed, "reason": "ok" if passed else "Broken reply."})

    def agent(request):
        messages = request.json()["messages"]
        system, question = messages[0]["content"], messages[-1]["content"]
        if "RULE-BREAK" in system:
            reply = "BROKEN"
        elif ("RULE-REFUND" in system or "RULE-PLAN" in system) and question in expected_by_question:
            expected = expected_by_question[question]
            covered = ("RULE-REFUND" in system and "refund" in expected) or (
                "RULE-PLAN" in system and "plan" in expected
            )
            reply = expected if covered else "Let me check."
        else:
            reply = "Let me check." if question in expected_by_question else "Hi! What brings you here?"
        return fake_openai.completion(
            {"reply": reply, "qualified": False, "lead_fields": {}, "handoff": False}
        )

    fake_openai.route("smallest possible edit", suggest)
    fake_openai.route("You grade a sales assistant", judge)
    fake_openai.route("", agent)


def test_themes_are_found_among_corrections_since_the_release(corrections):
    active, made, good, old = corrections
    themes = improvement_themes(since=active.activated_at)
    assert len(themes) == 3
    assert sorted(sorted(t.example_ids) for t in themes) == sorted(
        sorted(e.pk for e in g) for g in made.values()
    )
    assert all(old.pk not in t.example_ids for t in themes)
    assert any("refund" in t.name for t in themes), [t.name for t in themes]


def test_suggest_improvements_makes_at_most_three_evaluated_drafts_ranked_by_gain(
    corrections, fake_openai, manager
):
    active, made, good, old = corrections
    _script(fake_openai, made)

    suggestions = suggestions_generate(user=manager)

    assert len(suggestions) == 3
    assert PromptVersion.objects.filter(is_active=True).get() == active  # nothing went live
    by_theme = {}
    for s in suggestions:
        assert s.status == SuggestionStatus.EVALUATED and s.draft_version is not None
        assert not s.draft_version.is_active and s.draft_version.parent_id == active.pk
        for pk in s.example_ids:
            assert f"#{pk}" in s.draft_version.change_note  # each names its examples
        key = next(k for k, group in made.items() if {e.pk for e in group} == set(s.example_ids))
        by_theme[key] = s
        assert (
            s.results["theme_total"] == len(made[key]) and s.results["others_total"] == 4
        )  # 3 good + the one before the release
    refund, plan, schedule = by_theme["refund"], by_theme["installments"], by_theme["schedule"]
    assert RULES["refund"] in refund.draft_version.content
    assert refund.results["theme_passed"] == 7 and refund.results["theme_passed_before"] == 0
    assert refund.results["regressions"] == [] and refund.gain == 7
    assert plan.gain == 7
    # The edit that breaks the good examples shows its regressions and ranks last.
    assert sorted(schedule.results["regressions"]) == sorted(e.pk for e in good)
    assert schedule.gain == -3
    assert suggestions[-1] == schedule

    client = Client()
    client.force_login(manager)
    page = client.get(reverse("dashboard:training_suggestions"))
    html = page.content.decode()
    assert html.count('data-testid="suggestion"') == 3
    assert [s.pk for s in page.context["suggestions"]][-1] == schedule.pk
    for example in good:
        assert f"/dashboard/training/library/{example.pk}/" in html


def test_command_prints_each_draft_with_its_results(corrections, fake_openai, manager, capsys):
    _, made, _, _ = corrections
    _script(fake_openai, made)
    call_command("suggest_improvements", "--user", manager.username, "--themes", "2")
    out = capsys.readouterr().out
    assert ImprovementSuggestion.objects.count() == 2
    assert out.count(" gain ") == 2 and "theme 7/7 (before 0)" in out


def test_a_model_edit_that_does_not_fit_the_prompt_is_refused(corrections, fake_openai, manager):
    _, made, _, _ = corrections
    fake_openai.route(
        "smallest possible edit", fake_openai.completion({"find": "not in the prompt", "replace": "x"})
    )
    fake_openai.route("", lambda r: fake_openai.completion({"reply": "Let me check."}))
    drafts_before = PromptVersion.objects.count()
    suggestions = suggestions_generate(user=manager, max_themes=1)
    assert [s.status for s in suggestions] == [SuggestionStatus.FAILED]
    assert "not exactly once" in suggestions[0].error
    assert PromptVersion.objects.count() == drafts_before


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (Edit(find="", replace="x" * 2000, rationale=""), "longer than"),
        (Edit(find="Ava", replace="Ava", rationale=""), "unchanged"),
        (Edit(find="missing", replace="y", rationale=""), "not exactly once"),
    ],
)
def test_edit_apply_bounds(edit, message):
    with pytest.raises(SuggestionError, match=message):
        edit_apply(prompt="You are Ava.", edit=edit)


def test_the_button_needs_draft_permission_and_queues_the_flow(
    client, viewer, manager, corrections, settings
):
    client.force_login(viewer)
    assert client.post(reverse("dashboard:training_suggestions_run")).status_code == 403
    assert client.get(reverse("dashboard:training_suggestions")).status_code == 200


def test_no_active_version_is_a_clear_error(manager):
    from django.core.exceptions import ValidationError

    with pytest.raises(ValidationError, match="No active prompt version"):
        suggestions_generate(user=manager)


def test_each_draft_is_rehearsed_against_the_active_version_when_scenarios_exist(
    corrections, fake_openai, manager, settings
):
    from agent.rehearsal.models import RehearsalRun, Scenario

    settings.CELERY_TASK_ALWAYS_EAGER = False  # the runs are queued, not played here
    active, made, _good, _old = corrections
    _script(fake_openai, made)
    Scenario.objects.create(
        title="Asks for a refund", persona="A lead unhappy with the course", opening_messages=["Refund?"]
    )

    suggestions = suggestions_generate(user=manager)

    runs = {run.version_id: run for run in RehearsalRun.objects.all()}
    assert set(runs) == {s.draft_version_id for s in suggestions}
    for s in suggestions:
        assert runs[s.draft_version_id].against_version_id == active.pk
        assert s.results["rehearsal_run_id"] == runs[s.draft_version_id].pk
    client = Client()
    client.force_login(manager)
    html = client.get(reverse("dashboard:training_suggestions")).content.decode()
    assert f"/dashboard/rehearsal/runs/{suggestions[0].results['rehearsal_run_id']}/" in html


def test_without_scenarios_no_rehearsal_is_started(corrections, fake_openai, manager):
    from agent.rehearsal.models import RehearsalRun

    _script(fake_openai, corrections[1])
    suggestions = suggestions_generate(user=manager)
    assert RehearsalRun.objects.count() == 0
    assert all("rehearsal_run_id" not in s.results for s in suggestions)
