from typing import Any

import pytest

from agent.rehearsal import services
from agent.rehearsal.models import Scenario, SharedCheck
from prompts.models import PromptVersion
from tests.factories import PromptVersionFactory
from tests.fakes.fake_openai import FakeOpenAI

ALLOWED = ["€49", "€99"]


@pytest.fixture(autouse=True)
def _eager(settings):
    settings.CELERY_TASK_ALWAYS_EAGER = True
    from config.celery import app

    eager = app.conf.task_always_eager
    app.conf.task_always_eager = True
    yield
    app.conf.task_always_eager = eager


@pytest.fixture
def both_sides(fake_openai: FakeOpenAI) -> FakeOpenAI:
    """The fake model playing the simulated lead, the agent under rehearsal, the judge and the drafter."""
    fake_openai.play_rehearsal()
    return fake_openai


@pytest.fixture
def allowed_prices(db) -> SharedCheck:
    return SharedCheck.objects.create(
        name="Allowed prices", kind="allowed_prices", params={"prices": ALLOWED}, never=True
    )


@pytest.fixture
def make_scenario(db):
    def make(**overrides: Any) -> Scenario:
        data = {
            "title": "Bakery owner",
            "persona": "A bakery owner with a 2k/month budget who worries about the contract length.",
            "goal": "Start next month.",
            "opening_messages": ["Hi, how much is your program?"],
            "channel": "instagram",
            "facts": {"budget": "2k a month", "timeline": "next month"},
            "max_turns": 6,
            "checks": [{"kind": "budget_before_price"}],
            "tags": ["pricing"],
        }
        data.update(overrides)
        return services.scenario_create(data=data)

    return make


@pytest.fixture
def versions(db) -> dict[str, PromptVersion]:
    return {
        "active": PromptVersionFactory(
            version=1, content="You are Ava, a careful sales assistant.", is_active=True
        ),
        "good": PromptVersionFactory(version=2, content="You are Ava (v2), a warmer sales assistant."),
        "inventor": PromptVersionFactory(version=3, content="You are Ava (v3). INVENTS-PRICES."),
        "flaky": PromptVersionFactory(version=4, content="You are Ava (v4). FLAKY."),
    }
