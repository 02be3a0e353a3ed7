"""Evaluation runs count their spend apart (SpendDay) and are refused over their own daily cap."""

from decimal import Decimal

import pytest
from django.urls import reverse
from django.utils import timezone

from agent import budget, evaluation
from agent.models import EvaluationRun, EvaluationStatus, SpendDay
from agent.spend.selectors import price_usd, usd_micros
from leads import roles
from training.models import ExampleType

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _priced(settings):
    settings.AGENT_MODEL_PRICES = {"fake-gpt": (Decimal("0.15"), Decimal("0.60"))}
    settings.OPENAI_MODEL = "fake-gpt"


def test_a_run_records_every_call_as_evaluation_spend(model, approved, versions):
    _, draft = versions
    approved(ExampleType.GOOD, user_message="Do you have a gym near Lyon?", ai_response="Yes, two!")
    approved(ExampleType.GOOD, user_message="Open on Sundays?", ai_response="Yes, 8 to 20.")
    model.agent("Yes! We have two clubs in Lyon.")
    run = evaluation.evaluation_run_create(version=draft, against=None, schedule=False)
    evaluation.evaluation_run_execute(run_id=run.pk)
    run.refresh_from_db()

    day = SpendDay.objects.get(purpose="evaluation", day=timezone.localdate())
    assert day.prompt_tokens + day.completion_tokens == run.tokens > 0
    # Two examples, each an agent call (120 + 30) and a judge call (200 + 10), priced per call.
    expected = 2 * (
        usd_micros(price_usd(model="fake-gpt", prompt_tokens=120, completion_tokens=30))
        + usd_micros(price_usd(model="fake-gpt", prompt_tokens=200, completion_tokens=10))
    )
    assert (day.calls, day.usd_micros) == (4, expected)
    assert not SpendDay.objects.filter(purpose="agent").exists()  # the agent's spend is its reply rows


@pytest.mark.parametrize(
    ("setting", "value"), [("EVALUATION_DAILY_TOKEN_CAP", 1000), ("EVALUATION_DAILY_USD_CAP", 0.01)]
)
def test_over_its_cap_an_evaluation_is_refused_with_409_naming_the_cap(
    api, make_user, versions, approved, model, settings, setting, value
):
    setattr(settings, setting, value)
    SpendDay.objects.create(
        day=timezone.localdate(), purpose="evaluation", prompt_tokens=1000, usd_micros=10_000, calls=3
    )
    _, draft = versions
    approved(ExampleType.GOOD, user_message="Hi", ai_response="Hello!")
    user = make_user("manager")
    assert user.has_perm(roles.PERM_CREATE_PROMPT)

    response = api(user).post(
        reverse("api:prompt_version_evaluate", args=[draft.pk]), {"against": None}, format="json"
    )

    assert response.status_code == 409
    assert setting in response.json()["budget"][0]
    assert EvaluationRun.objects.count() == 0
    assert model.agent_calls() == []


def test_the_rehearsal_and_scoring_caps_do_not_stop_an_evaluation(
    api, make_user, versions, approved, settings
):
    settings.REHEARSAL_DAILY_TOKEN_CAP = 1
    settings.SCORING_DAILY_TOKEN_CAP = 1
    SpendDay.objects.create(day=timezone.localdate(), purpose="rehearsal", prompt_tokens=50)
    SpendDay.objects.create(day=timezone.localdate(), purpose="scoring", prompt_tokens=50)
    _, draft = versions
    approved(ExampleType.GOOD, user_message="Hi", ai_response="Hello!")
    run = evaluation.evaluation_run_create(version=draft, against=None, schedule=False)
    assert run.pk
    with pytest.raises(budget.BudgetExceeded, match="REHEARSAL_DAILY_TOKEN_CAP"):
        budget.budget_check(purpose=budget.Purpose.REHEARSAL)
    with pytest.raises(budget.BudgetExceeded, match="SCORING_DAILY_TOKEN_CAP"):
        budget.budget_check(purpose=budget.Purpose.SCORING)


def test_a_run_queued_before_the_cap_was_reached_fails_at_start_naming_it(
    model, versions, approved, settings
):
    _, draft = versions
    approved(ExampleType.GOOD, user_message="Hi", ai_response="Hello!")
    run = evaluation.evaluation_run_create(version=draft, against=None, schedule=False)
    settings.EVALUATION_DAILY_TOKEN_CAP = 100
    SpendDay.objects.create(day=timezone.localdate(), purpose="evaluation", prompt_tokens=100)

    assert evaluation.evaluation_run_execute(run_id=run.pk) == EvaluationStatus.FAILED
    run.refresh_from_db()
    assert "EVALUATION_DAILY_TOKEN_CAP" in run.error and run.processed == 0
    assert model.agent_calls() == []
