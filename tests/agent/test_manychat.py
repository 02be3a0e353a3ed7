import pytest

from agent import manychat


@pytest.mark.parametrize(
    ("channel", "content_type", "limit"),
    [
        ("instagram", "instagram", 1000),
        ("facebook", None, 2000),
        ("whatsapp", "whatsapp", 4096),
        ("telegram", "telegram", 4096),
        ("other", None, 2000),
    ],
)
def test_block_type_and_split_per_channel(channel, content_type, limit):
    text = ("word " * 1500).strip()  # 7499 characters
    body = manychat.dynamic_block_build(channel=channel, text=text)
    assert body["version"] == "v2"
    assert body["content"].get("type") == content_type
    messages = body["content"]["messages"]
    assert all(m["type"] == "text" and 0 < len(m["text"]) <= limit for m in messages)
    assert len(messages) == -(-len(text) // limit) or len(messages) <= manychat.MAX_MESSAGES
    assert " ".join(m["text"] for m in messages).split() == text.split()  # split at spaces, nothing lost


def test_at_most_ten_messages_and_the_cut_is_marked():
    body = manychat.dynamic_block_build(channel="instagram", text="x" * 20_000)
    messages = body["content"]["messages"]
    assert len(messages) == 10
    assert all(len(m["text"]) <= 1000 for m in messages)
    assert messages[-1]["text"].endswith("…")


def test_actions_capped_and_quick_replies_dropped_where_unsupported():
    actions = [{"action": "add_tag", "tag_name": f"t{i}"} for i in range(8)]
    quick = [{"type": "node", "caption": "Yes", "target": "Yes"}]
    wa = manychat.dynamic_block_build(channel="whatsapp", text="hi", actions=actions, quick_replies=quick)
    ig = manychat.dynamic_block_build(channel="instagram", text="hi", actions=actions, quick_replies=quick)
    assert len(wa["content"]["actions"]) == 5
    assert "quick_replies" not in wa["content"]
    assert ig["content"]["quick_replies"] == quick
    assert (
        "quick_replies"
        not in manychat.dynamic_block_build(channel="telegram", text="hi", quick_replies=quick)["content"]
    )


def test_empty_text_is_an_empty_reply():
    assert manychat.dynamic_block_build(channel="facebook", text="")["content"]["messages"] == []
    assert manychat.dynamic_block_empty() == {"version": "v2", "content": {"messages": []}}


def test_actions_come_from_validated_flags(settings):
    settings.MANYCHAT_QUALIFIED_TAG = "qualified"
    settings.MANYCHAT_STAGE_FIELD = "lead_stage"
    settings.MANYCHAT_HANDOFF_TAG = "needs_human"
    assert manychat.actions_for_turn(qualified=False, handoff=False) == []
    assert manychat.actions_for_turn(qualified=True, handoff=True) == [
        {"action": "add_tag", "tag_name": "qualified"},
        {"action": "set_field_value", "field_name": "lead_stage", "value": "qualified"},
        {"action": "add_tag", "tag_name": "needs_human"},
    ]


def test_send_content_success_sends_the_documented_body(fake_manychat):
    data = manychat.dynamic_block_build(channel="whatsapp", text="hello")
    result = manychat.manychat_send_content(subscriber_id="123", data=data)
    assert result.attempts == 1
    request = fake_manychat.requests[0]
    assert request.path == "/fb/sending/sendContent"
    assert request.headers["authorization"] == f"Bearer {fake_manychat.token}"
    assert request.json() == {"subscriber_id": 123, "data": data}


def test_window_closed_is_terminal_and_not_retried(fake_manychat):
    fake_manychat.set_default(fake_manychat.window_closed())
    with pytest.raises(manychat.ManyChatWindowClosed) as caught:
        manychat.manychat_send_content(subscriber_id="123", data=manychat.dynamic_block_empty())
    assert caught.value.code == 3011
    assert fake_manychat.calls == 1


@pytest.mark.parametrize("status", [429, 500, 503])
def test_429_and_5xx_are_retried_then_succeed(fake_manychat, status):
    fake_manychat.enqueue(fake_manychat.error(status), fake_manychat.error(status))
    result = manychat.manychat_send_content(subscriber_id="5", data=manychat.dynamic_block_empty())
    assert result.attempts == 3
    assert fake_manychat.calls == 3


def test_other_4xx_is_not_retried(fake_manychat):
    fake_manychat.set_default(fake_manychat.error(400, "Validation error", code=2001))
    with pytest.raises(manychat.ManyChatError) as caught:
        manychat.manychat_send_content(subscriber_id="5", data=manychat.dynamic_block_empty())
    assert caught.value.retryable is False
    assert fake_manychat.calls == 1


def test_persistent_5xx_gives_up_retryable(fake_manychat):
    fake_manychat.set_default(fake_manychat.error(502))
    with pytest.raises(manychat.ManyChatError) as caught:
        manychat.manychat_send_content(subscriber_id="5", data=manychat.dynamic_block_empty(), max_attempts=2)
    assert caught.value.retryable is True
    assert fake_manychat.calls == 2


def test_no_token_refuses_without_calling(settings, fake_manychat):
    settings.MANYCHAT_API_TOKEN = ""
    with pytest.raises(manychat.ManyChatError):
        manychat.manychat_send_content(subscriber_id="5", data=manychat.dynamic_block_empty())
    assert fake_manychat.calls == 0
