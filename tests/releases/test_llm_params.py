"""agent.llm with a version's model settings, against the fake OpenAI server over real HTTP."""

import pytest

from agent import llm

MESSAGES = [{"role": "system", "content": "You are Ava."}, {"role": "user", "content": "Hi"}]


def test_the_settings_are_sent(fake_openai):
    llm.llm_complete(messages=MESSAGES, model="gpt-6-luna", params={"reasoning_effort": "low"})
    body = fake_openai.completion_requests()[-1].json()
    assert body["model"] == "gpt-6-luna" and body["reasoning_effort"] == "low" and "temperature" not in body


def test_a_rejected_parameter_is_dropped_and_the_call_retried_once(fake_openai):
    fake_openai.reject_params("gpt-6-luna", "temperature")
    result = llm.llm_complete(messages=MESSAGES, model="gpt-6-luna", params={"temperature": 0.4})
    assert result.decision.reply == "Thanks! How can I help?"
    assert result.dropped_params == ("temperature",)
    assert ["temperature" in r.json() for r in fake_openai.completion_requests()] == [True, False]


def test_a_second_rejection_is_an_error_not_a_loop(fake_openai):
    fake_openai.reject_params("gpt-6-luna", "temperature", "reasoning_effort")
    with pytest.raises(llm.LlmError):
        llm.llm_complete(
            messages=MESSAGES, model="gpt-6-luna", params={"temperature": 0.4, "reasoning_effort": "low"}
        )
    assert len(fake_openai.completion_requests()) == 2


def test_other_400s_are_not_retried(fake_openai):
    fake_openai.enqueue(fake_openai.error(400, "Invalid 'messages': too long"))
    with pytest.raises(llm.LlmError):
        llm.llm_complete(messages=MESSAGES, model="gpt-6-luna", params={"temperature": 0.4})
    assert len(fake_openai.completion_requests()) == 1
