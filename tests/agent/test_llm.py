import json
import time
from dataclasses import replace

import pytest

from agent import llm


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        ("Just plain text", {"reply": "Just plain text", "qualified": False, "handoff": False}),
        ('```json\n{"reply": "fenced", "qualified": true}\n```', {"reply": "fenced", "qualified": True}),
        ('{"reply": "x", "qualified": "yes", "handoff": 1}', {"qualified": False, "handoff": False}),
        (
            '{"reply": "", "handoff": true, "handoff_reason": "angry"}',
            {"handoff": True, "handoff_reason": "angry"},
        ),
        ("[1, 2]", {"reply": "[1, 2]"}),
    ],
)
def test_output_parsing(content, expected):
    parsed = llm.llm_output_parse(content=content).model_dump()
    for key, value in expected.items():
        assert parsed[key] == value


def test_lead_fields_are_bounded_and_scalar():
    fields = {f"k{i}": "v" * 900 for i in range(30)}
    fields["nested"] = {"a": 1}
    fields["none"] = None
    parsed = llm.llm_output_parse(content=json.dumps({"reply": "ok", "lead_fields": fields})).model_dump()
    assert len(parsed["lead_fields"]) == llm.MAX_LEAD_FIELDS
    assert all(len(v) == llm.MAX_FIELD_VALUE_CHARS for v in parsed["lead_fields"].values())
    assert "nested" not in parsed["lead_fields"]


@pytest.mark.parametrize("content", ["", '{"reply": 5}', '{"reply": "  ", "handoff": false}'])
def test_invalid_output_is_an_error(content):
    with pytest.raises(llm.LlmError) as caught:
        llm.llm_output_parse(content=content)
    assert caught.value.kind == "invalid_output"


MESSAGES = [{"role": "system", "content": "be nice"}, {"role": "user", "content": "hi"}]


def test_complete_against_the_fake_server(fake_openai):
    fake_openai.reply_with({"reply": "Hello!", "qualified": True, "lead_fields": {"budget": "3k"}})
    result = llm.llm_complete(messages=MESSAGES)
    answer = result.decision
    assert (answer.reply, answer.qualified, answer.lead_fields) == ("Hello!", True, {"budget": "3k"})
    assert (result.model, result.prompt_tokens, result.completion_tokens) == ("fake-gpt", 120, 30)
    request = fake_openai.completion_requests()[0]
    assert request.headers["authorization"] == "Bearer sk-test-fake"
    assert request.json()["messages"] == MESSAGES
    assert request.json()["response_format"] == {"type": "json_object"}


def test_a_server_error_is_retried_within_the_bound(fake_openai):
    fake_openai.enqueue(fake_openai.error(500))
    result = llm.llm_complete(messages=MESSAGES)
    assert result.attempts == 2
    assert fake_openai.calls == 2


def test_persistent_errors_stop_after_the_retries(fake_openai, settings):
    settings.OPENAI_MAX_RETRIES = 2
    fake_openai.set_default(fake_openai.error(503))
    with pytest.raises(llm.LlmError) as caught:
        llm.llm_complete(messages=MESSAGES)
    assert caught.value.kind == "error"
    assert fake_openai.calls == 3


def test_a_client_error_is_not_retried(fake_openai):
    fake_openai.set_default(fake_openai.error(400, "bad request"))
    with pytest.raises(llm.LlmError):
        llm.llm_complete(messages=MESSAGES)
    assert fake_openai.calls == 1


def test_garbage_body_is_an_error(fake_openai):
    fake_openai.set_default(fake_openai.garbage())
    with pytest.raises(llm.LlmError):
        llm.llm_complete(messages=MESSAGES)


def test_the_deadline_bounds_the_call(fake_openai):
    fake_openai.reply_with("late", delay=3)
    started = time.monotonic()
    with pytest.raises(llm.LlmError) as caught:
        llm.llm_complete(messages=MESSAGES, deadline=time.monotonic() + 0.5)
    assert caught.value.kind == "timeout"
    assert time.monotonic() - started < 2.5  # no retry can start past the deadline


def test_offline_responder_is_deterministic(settings):
    settings.OPENAI_API_KEY = ""
    messages = [{"role": "user", "content": "I want to buy, budget is $5,000, mail me at a@b.co"}]
    first = llm.llm_complete(messages=messages)
    assert replace(first, latency_ms=0) == replace(llm.llm_complete(messages=messages), latency_ms=0)
    assert first.model == llm.OFFLINE_MODEL
    assert first.decision.qualified is True
    assert first.decision.lead_fields == {"email": "a@b.co", "budget": "$5,000"}
    handoff = llm.llm_complete(messages=[{"role": "user", "content": "can I talk to a real person?"}])
    assert handoff.decision.handoff is True
