import json

import pytest

from agent.payloads import PayloadError, payload_parse

FULL_CONTACT = {
    "id": 1234567890,
    "key": "user:1234567890",
    "page_id": 998877,
    "status": "active",
    "first_name": "Lena",
    "last_name": "Ortiz",
    "name": "Lena Ortiz",
    "gender": None,
    "profile_pic": "https://example.com/p.jpg",
    "locale": "en_US",
    "language": "English",
    "timezone": "UTC-07",
    "live_chat_url": "https://manychat.com/fb998877/chat/1234567890",
    "last_input_text": "Do you ship to Canada?",
    "last_growth_tool": None,
    "subscribed": "2026-05-01T10:54:33-06:00",
    "last_interaction": "2026-05-04T10:54:33-06:00",
    "last_seen": "2026-05-04T10:54:33-06:00",
    "custom_fields": {"budget": "2000", "lead_stage": None},
    "optin_phone": False,
    "phone": None,
    "optin_email": True,
    "email": "lena@example.com",
    "ig_username": "lena.o",
    "ig_id": 55501,
    "ig_last_interaction": "2026-05-04T10:54:33-06:00",
    "whatsapp_phone": None,
    "optin_whatsapp": False,
    "user_refs": [],
    "is_followup_enabled": True,
    "tt_user_id": None,
    "tt_username": None,
    "phone_country_code": None,
}


def parse(body) -> object:
    return payload_parse(raw=json.dumps(body).encode())


def test_flat_body_from_the_builder():
    message = parse(
        {
            "subscriber_id": "777",
            "text": " Hello there ",
            "channel": "whatsapp",
            "first_name": "Sam",
            "last_name": None,
            "username": "sammy",
            "phone": "+15550001",
            "email": None,
            "message_id": 42,
            "something_new": {"x": 1},
        }
    )
    assert message.subscriber_id == "777"
    assert message.text == "Hello there"
    assert message.channel == "whatsapp"
    assert (message.first_name, message.last_name, message.username) == ("Sam", "", "sammy")
    assert message.phone == "+15550001"
    assert message.email == ""
    assert message.message_id == "42"


@pytest.mark.parametrize("wrapper", [None, "data", "contact", "user", "subscriber"])
def test_full_contact_data_top_level_or_nested(wrapper):
    body = FULL_CONTACT if wrapper is None else {wrapper: FULL_CONTACT, "source": "manychat"}
    message = parse(body)
    assert message.subscriber_id == "1234567890"  # a number in the body, a string for us
    assert message.text == "Do you ship to Canada?"
    assert message.channel == "instagram"  # inferred from ig_id / ig_username
    assert (message.first_name, message.last_name) == ("Lena", "Ortiz")
    assert message.username == "lena.o"
    assert message.email == "lena@example.com"
    assert message.custom_fields == {"budget": "2000", "lead_stage": None}
    assert message.message_id == ""


def test_flat_fields_win_over_the_nested_contact():
    body = {"subscriber_id": "55", "text": "the typed text", "channel": "telegram", "contact": FULL_CONTACT}
    message = parse(body)
    assert (message.subscriber_id, message.text, message.channel) == ("55", "the typed text", "telegram")
    assert message.first_name == "Lena"  # filled from the contact


def test_wrapper_id_does_not_shadow_the_contact_id():
    message = parse({"id": "evt_1", "data": {"id": 31, "last_input_text": "hey"}})
    assert message.subscriber_id == "31"


def test_key_user_prefix_and_getinfo_custom_fields_array():
    body = {
        "key": "user:8080",
        "last_input_text": "https://cdn.manychat.com/media/voice.ogg",
        "whatsapp_phone": "+4930123",
        "custom_fields": [
            {"id": 1, "name": "budget", "type": "number", "value": 5000},
            {"id": 2, "name": "notes", "type": "text", "value": None},
        ],
    }
    message = parse(body)
    assert message.subscriber_id == "8080"
    # Media arrives as a URL in the text: it is the attachment, not words the lead typed.
    assert (message.text, message.attachment_url) == ("", "https://cdn.manychat.com/media/voice.ogg")
    assert message.attachment_kind == "audio"
    assert message.channel == "whatsapp"
    assert message.phone == "+4930123"
    assert message.custom_fields == {"budget": 5000, "notes": None}


def test_name_is_split_when_first_and_last_are_missing():
    message = parse({"subscriber_id": 1, "text": "yo", "name": "Ana Maria Lopez"})
    assert (message.first_name, message.last_name) == ("Ana", "Maria Lopez")
    assert message.channel == "other"


@pytest.mark.parametrize(
    ("raw", "field"),
    [
        (b"{not json", "body"),
        (b"\xff\xfe", "body"),
        (b"[1, 2]", "body"),
        (json.dumps({"text": "hi"}).encode(), "subscriber_id"),
        (json.dumps({"subscriber_id": None, "text": "hi"}).encode(), "subscriber_id"),
        (json.dumps({"subscriber_id": "1", "text": "   "}).encode(), "text"),
        (json.dumps({"subscriber_id": "1", "text": None}).encode(), "text"),
        (json.dumps({"subscriber_id": "1"}).encode(), "text"),
        (json.dumps({"subscriber_id": "9" * 65, "text": "hi"}).encode(), "subscriber_id"),
        # Unfilled ManyChat variables and ids that are not ManyChat's (P1): never one shared lead.
        (json.dumps({"subscriber_id": "{{contact.id}}", "text": "hi"}).encode(), "subscriber_id"),
        (json.dumps({"subscriber_id": "{{user_id}}", "text": "hi"}).encode(), "subscriber_id"),
        (json.dumps({"subscriber_id": " {{ user_id }} ", "text": "hi"}).encode(), "subscriber_id"),
        (json.dumps({"subscriber_id": "abc-12", "text": "hi"}).encode(), "subscriber_id"),
        (json.dumps({"subscriber_id": "12 34", "text": "hi"}).encode(), "subscriber_id"),
        (json.dumps({"subscriber_id": -5, "text": "hi"}).encode(), "subscriber_id"),
        (json.dumps({"contact_id": "{{contact.id}}", "text": "hi"}).encode(), "contact_id"),
        (json.dumps({"data": {"id": "{{user_id}}", "last_input_text": "hi"}}).encode(), "id"),
        (json.dumps({"subscriber_id": "12", "text": "{{last_input_text}}"}).encode(), "text"),
        (json.dumps({"data": '{"id": 1, "last_input_text": "hi"'}).encode(), "data"),
    ],
)
def test_bad_bodies_name_the_problem(raw, field):
    with pytest.raises(PayloadError) as caught:
        payload_parse(raw=raw)
    assert caught.value.field == field


def test_placeholder_profile_values_are_read_as_empty():
    message = parse(
        {"subscriber_id": "12", "text": "hi", "first_name": "{{first_name}}", "email": "{{email}}"}
    )
    assert (message.first_name, message.email) == ("", "")


def test_a_text_that_mentions_braces_is_kept():
    message = parse({"subscriber_id": "12", "text": "what does {{name}} mean in your template?"})
    assert message.text == "what does {{name}} mean in your template?"


@pytest.mark.parametrize("wrapper", ["data", "contact", "user", "subscriber"])
def test_full_contact_data_as_a_json_string(wrapper):
    message = parse({wrapper: json.dumps(FULL_CONTACT), "channel": "instagram"})
    assert message.subscriber_id == "1234567890"
    assert message.text == "Do you ship to Canada?"
    assert message.channel == "instagram"
    assert message.custom_fields == {"budget": "2000", "lead_stage": None}


@pytest.mark.parametrize(
    ("explicit", "expected"),
    [
        ("whatsapp", "whatsapp"),
        ("WA", "whatsapp"),
        ("instagram", "instagram"),
        ("tiktok", "tiktok"),
        ("sms", "sms"),
        ("email", "email"),
        ("telegram", "telegram"),
    ],
)
def test_explicit_channel_wins_over_a_multi_channel_contact(explicit, expected):
    contact = {**FULL_CONTACT, "whatsapp_phone": "+34600111222", "optin_whatsapp": True}
    message = parse({"data": contact, "channel": explicit})
    assert message.channel == expected


def test_multi_channel_contact_without_channel_is_logged(caplog):
    contact = {**FULL_CONTACT, "whatsapp_phone": "+34600111222"}
    with caplog.at_level("WARNING", logger="agent.payloads"):
        message = parse(contact)
    assert message.channel == "instagram"
    assert "instagram/whatsapp" in caplog.text and "channel" in caplog.text


def test_unknown_explicit_channel_is_logged_and_inferred(caplog):
    with caplog.at_level("WARNING", logger="agent.payloads"):
        message = parse({"data": FULL_CONTACT, "channel": "{{channel}}"})
    assert message.channel == "instagram"
    caplog.clear()
    with caplog.at_level("WARNING", logger="agent.payloads"):
        message = parse({"subscriber_id": "3", "text": "hi", "channel": "myspace"})
    assert message.channel == "other"
    assert "myspace" in caplog.text


def test_tiktok_contact_is_inferred():
    contact = {
        **FULL_CONTACT,
        "ig_id": None,
        "ig_username": None,
        "tt_user_id": "7001",
        "tt_username": "tt.lena",
    }
    assert parse(contact).channel == "tiktok"


def test_live_chat_url_is_kept():
    assert parse(FULL_CONTACT).live_chat_url == "https://manychat.com/fb998877/chat/1234567890"
    assert (
        parse({"subscriber_id": "5", "text": "hi", "live_chat_url": "javascript:alert(1)"}).live_chat_url
        == ""
    )


@pytest.mark.parametrize(
    ("body", "url", "kind"),
    [
        (
            {"attachment_url": "https://scontent.fbcdn.net/v/a.jpg?x=1"},
            "https://scontent.fbcdn.net/v/a.jpg?x=1",
            "image",
        ),
        (
            {"attachment_url": "https://cdn.example.com/n.ogg", "attachment_type": "voice"},
            "https://cdn.example.com/n.ogg",
            "audio",
        ),
        (
            {"last_input_text": "https://lookaside.fbsbx.com/ig_messaging_cdn/?asset_id=1"},
            "https://lookaside.fbsbx.com/ig_messaging_cdn/?asset_id=1",
            "file",
        ),
        (
            {"text": "https://cdn.manychat.com/x/sticker.webp"},
            "https://cdn.manychat.com/x/sticker.webp",
            "image",
        ),
        ({"text": "https://example.com/brochure.pdf"}, "https://example.com/brochure.pdf", "file"),
    ],
)
def test_an_attachment_without_text_is_a_message(body, url, kind):
    message = parse({"subscriber_id": "77", **body})
    assert (message.text, message.attachment_url, message.attachment_kind) == ("", url, kind)


def test_a_link_the_lead_typed_is_text():
    message = parse({"subscriber_id": "77", "text": "https://example.com/pricing"})
    assert (message.text, message.attachment_url) == ("https://example.com/pricing", "")


def test_text_beside_an_attachment_is_kept():
    message = parse({"subscriber_id": "77", "text": "this one?", "attachment_url": "https://cdn.x.com/p.png"})
    assert (message.text, message.attachment_kind) == ("this one?", "image")


def test_contact_token_is_read_and_never_kept_as_a_custom_field(settings):
    settings.MANYCHAT_CONTACT_TOKEN_FIELD = "ai_contact_token"
    contact = {**FULL_CONTACT, "custom_fields": {"budget": "2000", "ai_contact_token": "tok-123"}}
    message = parse(contact)
    assert message.contact_token == "tok-123"
    assert message.custom_fields == {"budget": "2000"}
    assert parse({"subscriber_id": "5", "text": "hi", "contact_token": "abc"}).contact_token == "abc"
    assert (
        parse({"subscriber_id": "5", "text": "hi", "contact_token": "{{ai_contact_token}}"}).contact_token
        == ""
    )


def test_full_contact_data_as_a_string_keeps_the_nesting_limit():
    """A JSON string in the body is parsed with the body's own limits: deep nesting is a 400, not a 500."""
    import json as _json

    import pytest as _pytest

    from agent.payloads import PayloadError as _PayloadError
    from agent.payloads import payload_parse as _payload_parse

    deep = "[" * 5000 + "]" * 5000
    nested = '{"id": "123456789", "last_input_text": "hi", "x": ' + deep + "}"
    with _pytest.raises(_PayloadError) as raised:
        _payload_parse(raw=_json.dumps({"contact": nested}).encode())
    assert raised.value.field == "contact"
