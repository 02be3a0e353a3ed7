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


@pytest.mark.parametrize("status", [500, 503])
def test_5xx_is_retried_then_succeeds(fake_manychat, status):
    fake_manychat.enqueue(fake_manychat.error(status), fake_manychat.error(status))
    result = manychat.manychat_send_content(subscriber_id="5", data=manychat.dynamic_block_empty())
    assert result.attempts == 3
    assert fake_manychat.calls == 3
    assert len(fake_manychat.sent()) == 3


def test_429_waits_out_retry_after_then_succeeds(fake_manychat):
    fake_manychat.enqueue(fake_manychat.too_many_requests(retry_after=1))
    result = manychat.manychat_send_content(subscriber_id="5", data=manychat.dynamic_block_empty())
    assert result.attempts == 2
    times = fake_manychat.arrivals()
    assert times[1] - times[0] >= 0.9  # the whole page held back for Retry-After, not 0.25 s


def test_persistent_429_stays_retryable(fake_manychat):
    fake_manychat.set_default(fake_manychat.too_many_requests(retry_after=0))
    with pytest.raises(manychat.ManyChatError) as caught:
        manychat.manychat_send_content(subscriber_id="5", data=manychat.dynamic_block_empty(), max_attempts=2)
    assert caught.value.failure is manychat.SendFailure.RATE_LIMITED
    assert caught.value.retryable is True  # the reply stays pending: a 429 never loses it


def test_other_4xx_is_not_retried(fake_manychat):
    fake_manychat.set_default(fake_manychat.error(400, "Validation error", code=2001))
    with pytest.raises(manychat.ManyChatError) as caught:
        manychat.manychat_send_content(subscriber_id="5", data=manychat.dynamic_block_empty())
    assert caught.value.retryable is False
    assert caught.value.failure is manychat.SendFailure.REFUSED
    assert fake_manychat.calls == 1


@pytest.mark.parametrize(
    ("reply", "failure"),
    [
        ("wrong_token", manychat.SendFailure.TOKEN_INVALID),
        ("window_closed", manychat.SendFailure.WINDOW_CLOSED),
        ("otn_required", manychat.SendFailure.TAG_REQUIRED),
        ("notification_reason_required", manychat.SendFailure.TAG_REQUIRED),
        ("channel_refused", manychat.SendFailure.CHANNEL_REFUSED),
        ("error_with_200", manychat.SendFailure.REFUSED),
    ],
)
def test_every_refusal_is_classified_and_not_retried(fake_manychat, reply, failure):
    fake_manychat.set_default(getattr(fake_manychat, reply)())
    with pytest.raises(manychat.ManyChatError) as caught:
        manychat.manychat_send_content(subscriber_id="5", data=manychat.dynamic_block_empty())
    assert caught.value.failure is failure
    assert caught.value.retryable is False
    assert fake_manychat.calls == 1


def test_an_error_with_http_200_is_not_a_success(fake_manychat):
    fake_manychat.set_default(fake_manychat.error_with_200("Wrong token", code=None))
    with pytest.raises(manychat.ManyChatError) as caught:
        manychat.manychat_send_content(subscriber_id="5", data=manychat.dynamic_block_empty())
    assert caught.value.status == 200
    assert caught.value.failure is manychat.SendFailure.TOKEN_INVALID


def test_a_read_timeout_after_sending_is_never_retried(settings, fake_manychat):
    """D2: ManyChat took the send and answered late; sending again would deliver it twice."""
    settings.MANYCHAT_API_TIMEOUT_SECONDS = 0.5
    fake_manychat.set_default(fake_manychat.accepted_late(delay=1.5))
    with pytest.raises(manychat.ManyChatOutcomeUnknown) as caught:
        manychat.manychat_send_content(
            subscriber_id="5", data=manychat.dynamic_block_build(channel="x", text="hi")
        )
    assert caught.value.failure is manychat.SendFailure.OUTCOME_UNKNOWN
    assert caught.value.retryable is False
    assert len(fake_manychat.sent()) == 1


def test_a_connection_refused_is_retried_it_was_never_sent(settings, fake_manychat):
    fake_manychat.stop()  # nothing listens on the port any more
    with pytest.raises(manychat.ManyChatError) as caught:
        manychat.manychat_send_content(subscriber_id="5", data=manychat.dynamic_block_empty(), max_attempts=2)
    assert caught.value.failure is manychat.SendFailure.UNREACHABLE
    assert caught.value.retryable is True


def test_persistent_5xx_gives_up_retryable(fake_manychat):
    fake_manychat.set_default(fake_manychat.error(502))
    with pytest.raises(manychat.ManyChatError) as caught:
        manychat.manychat_send_content(subscriber_id="5", data=manychat.dynamic_block_empty(), max_attempts=2)
    assert caught.value.retryable is True
    assert fake_manychat.calls == 2


def test_no_token_refuses_without_calling(settings, fake_manychat):
    settings.MANYCHAT_API_TOKEN = ""
    with pytest.raises(manychat.ManyChatError) as caught:
        manychat.manychat_send_content(subscriber_id="5", data=manychat.dynamic_block_empty())
    assert caught.value.failure is manychat.SendFailure.NOT_CONFIGURED
    assert fake_manychat.calls == 0


SPANISH = (
    "¡Hola! Gracias por escribirnos. Nuestra membresía incluye acceso ilimitado, clases dirigidas, "
    "evaluación física y asesoría de nutrición. ¿Qué días sueles entrenar? "
)
RUSSIAN = "Здравствуйте! Спасибо за сообщение. Абонемент включает неограниченный доступ и занятия. "
EMOJI = "Great choice 💪🔥 see you soon 🙌🏽 "


@pytest.mark.parametrize(
    "sample", [SPANISH, RUSSIAN, EMOJI, "ñ" * 1500, "💪" * 700], ids=["es", "ru", "emoji", "n", "muscle"]
)
def test_instagram_is_split_by_utf8_bytes(sample):
    """R1: Meta caps an Instagram message at 1000 UTF-8 bytes; a 998-character Spanish part is 1097."""
    text = (sample * 40).strip()
    messages = manychat.dynamic_block_build(channel="instagram", text=text)["content"]["messages"]
    assert all(len(m["text"].encode("utf-8")) <= 1000 for m in messages)
    joined = "".join(m["text"] for m in messages)
    if len(messages) < manychat.MAX_MESSAGES:
        assert joined.replace(" ", "") == text.replace(" ", "")  # nothing lost, nothing cut mid-character


def test_other_channels_still_count_characters():
    text = ("ñandú " * 400).strip()  # 2399 characters, 2799 bytes
    messages = manychat.dynamic_block_build(channel="facebook", text=text)["content"]["messages"]
    assert max(len(m["text"]) for m in messages) > 1000
    assert all(len(m["text"]) <= 2000 for m in messages)


def test_a_cut_instagram_reply_keeps_its_ellipsis_under_the_byte_cap():
    messages = manychat.dynamic_block_build(channel="instagram", text="ñ" * 20_000)["content"]["messages"]
    assert len(messages) == 10
    assert messages[-1]["text"].endswith("…")
    assert all(len(m["text"].encode()) <= 1000 for m in messages)


@pytest.mark.parametrize("channel", ["tiktok", "sms", "email"])
def test_new_channels_get_no_type_and_the_smallest_cap(channel):
    body = manychat.dynamic_block_build(channel=channel, text="é" * 3000)
    assert "type" not in body["content"]
    assert all(len(m["text"].encode()) <= 1000 for m in body["content"]["messages"])


def test_subscriber_and_page_calls(fake_manychat):
    manychat.manychat_remove_tag(subscriber_id="77", tag_name="needs_human")
    manychat.manychat_set_fields(subscriber_id="77", fields=[{"field_id": 11, "field_value": "qualified"}])
    manychat.manychat_send_flow(subscriber_id="77", flow_ns="content2026_1")
    assert fake_manychat.calls_to("/fb/subscriber/removeTagByName") == [
        {"subscriber_id": 77, "tag_name": "needs_human"}
    ]
    assert fake_manychat.calls_to("/fb/subscriber/setCustomFields") == [
        {"subscriber_id": 77, "fields": [{"field_id": 11, "field_value": "qualified"}]}
    ]
    assert fake_manychat.calls_to("/fb/sending/sendFlow") == [
        {"subscriber_id": 77, "flow_ns": "content2026_1"}
    ]
    assert [t["name"] for t in manychat.manychat_tags()] == ["qualified", "needs_human"]
    assert manychat.manychat_page_info()["name"] == "Acme Gyms"
