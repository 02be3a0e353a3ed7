import json
from collections.abc import Callable
from typing import Any

import pytest
from django.utils import timezone

from agent.evaluation import JUDGE_INSTRUCTIONS
from prompts.models import PromptVersion
from tests.factories import PromptVersionFactory, TrainingExampleFactory
from tests.fakes.base import CapturedRequest, Reply
from tests.fakes.fake_openai import FakeOpenAI
from training.models import ExampleStatus, ExampleType, TrainingExample

JUDGE_MARKER = JUDGE_INSTRUCTIONS[:40]


def agent_answer(reply: str) -> dict[str, Any]:
    return {"reply": reply, "qualified": False, "lead_fields": {}, "handoff": False, "handoff_reason": None}


def judged(request: CapturedRequest) -> dict[str, Any]:
    """What the judge was asked to grade: the JSON in its user message."""
    return json.loads(request.json()["messages"][1]["content"])


@pytest.fixture
def model(fake_openai: FakeOpenAI):
    """The fake model, scripted per call kind: `model.agent(reply)` or `model.agent(fn)` for the agent's
    replies, `model.judge(fn)` for the judge (fn gets the judged data, returns (pass, reason))."""

    class Script:
        fake = fake_openai

        def __init__(self) -> None:
            self.verdict: Callable[[dict[str, Any]], tuple[bool, str]] = lambda data: (
                True,
                "Consistent with the example.",
            )
            # Registered first, so the judge's calls never reach the agent's routes or default.
            fake_openai.route(JUDGE_MARKER, self._judge_answer)

        def _judge_answer(self, request: CapturedRequest) -> Reply:
            passed, reason = self.verdict(judged(request))
            return fake_openai.completion(
                {"pass": passed, "reason": reason}, prompt_tokens=200, completion_tokens=10
            )

        def agent(self, reply: str | Callable[[list[dict[str, str]]], str]) -> None:
            if callable(reply):
                fake_openai.route(
                    '"messages"',
                    lambda request: fake_openai.completion(agent_answer(reply(request.json()["messages"]))),
                )
            else:
                fake_openai.reply_with(agent_answer(reply))

        def judge(self, verdict: Callable[[dict[str, Any]], tuple[bool, str]]) -> None:
            self.verdict = verdict

        def agent_calls(self) -> list[CapturedRequest]:
            return [r for r in fake_openai.completion_requests() if JUDGE_MARKER not in r.body.decode()]

        def judge_calls(self) -> list[CapturedRequest]:
            return [r for r in fake_openai.completion_requests() if JUDGE_MARKER in r.body.decode()]

    script = Script()
    return script


@pytest.fixture
def approved(db) -> Callable[..., TrainingExample]:
    def make(example_type: str = ExampleType.GOOD, **kwargs: Any) -> TrainingExample:
        if example_type == ExampleType.CORRECTION:
            kwargs.setdefault(
                "expected_response", "Our plans start at 49 euros a month; want a free trial week?"
            )
        return TrainingExampleFactory(
            example_type=example_type, status=ExampleStatus.APPROVED, decided_at=timezone.now(), **kwargs
        )

    return make


@pytest.fixture
def versions(db) -> tuple[PromptVersion, PromptVersion]:
    """(active v1, draft v2)."""
    active = PromptVersionFactory(version=1, content="You are Ava (v1), a sales assistant.", is_active=True)
    draft = PromptVersionFactory(version=2, content="You are Ava (v2), a warmer sales assistant.")
    return active, draft
