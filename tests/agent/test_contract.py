"""The model's output contract (agent.contract): instructions, parsing, bounds and refusal in one place."""

import pytest

from agent import contract
from agent.contract import ModelReply, OutputInvalid
from leads.models import DeliveryStatus, Message, MessageRole
from tests.agent.conftest import flat_body

TRUNCATED = '{"reply": "Sure! Our price is 500 USD and", "qualified": tr'


def test_the_instructions_name_every_field_of_the_contract():
    for name in ModelReply.model_fields:
        assert f'"{name}"' in contract.OUTPUT_INSTRUCTIONS
    assert contract.OUTPUT_INSTRUCTIONS.startswith("Answer with one JSON object and nothing else")


@pytest.mark.parametrize(
    "content",
    [
        TRUNCATED,
        '{"reply": "Hello',
        '```json\n{"reply": "cut off", "qualified"\n```',
        "```\n{not json at all\n```",
    ],
)
def test_json_that_does_not_parse_is_invalid_never_a_reply(content):
    """D4: a completion cut off mid-object must not be sent to the lead as text."""
    with pytest.raises(OutputInvalid, match="does not parse"):
        ModelReply.parse(content)


@pytest.mark.parametrize(
    ("content", "reply"),
    [("Just plain prose, no JSON.", "Just plain prose, no JSON."), ("[1, 2]", "[1, 2]"), ("42", "42")],
)
def test_prose_and_non_object_json_are_the_reply(content, reply):
    assert ModelReply.parse(content).reply == reply


def test_refusal_keeps_only_the_fallback_and_drops_every_decision():
    answer = ModelReply.parse(
        '{"reply": "secret!", "qualified": true, "lead_fields": {"budget": "5k"}, "handoff": true, '
        '"handoff_reason": "asked"}'
    )
    refused = answer.refused(fallback="One moment.")
    assert refused == ModelReply.model_construct(reply="One moment.")
    assert (refused.qualified, refused.lead_fields, refused.handoff, refused.handoff_reason) == (
        False,
        {},
        False,
        "",
    )


def test_bounds_hold_for_every_field():
    answer = ModelReply.parse(
        ModelReply.model_construct(
            reply="x" * (contract.MAX_REPLY_CHARS + 50),
            handoff_reason="r" * 900,
        ).model_dump_json()
    )
    assert len(answer.reply) == contract.MAX_REPLY_CHARS
    assert len(answer.handoff_reason) == contract.MAX_REASON_CHARS


def test_a_truncated_answer_takes_the_fallback_path_in_the_webhook(
    webhook, active_prompt, fake_openai, settings
):
    """D4 end to end: the lead gets the fallback line, the turn is a failed one the sweep retries."""
    settings.AGENT_FALLBACK_TEXT = "One moment, a teammate will follow up."
    fake_openai.reply_with(TRUNCATED)
    response = webhook(flat_body())
    assert response.status_code == 200
    sent = [m["text"] for m in response.json()["content"]["messages"]]
    assert sent == ["One moment, a teammate will follow up."]
    assert not any("{" in text for text in sent)
    inbound = Message.objects.get(role=MessageRole.LEAD)
    assert inbound.delivery_status == DeliveryStatus.FAILED
    assert "does not parse" in inbound.error
    assert not Message.objects.filter(in_reply_to=inbound, role=MessageRole.AGENT).exists()
    agent_lines = Message.objects.filter(role=MessageRole.AGENT).values_list("text", "model")
    assert list(agent_lines) == [("One moment, a teammate will follow up.", "fallback")]
