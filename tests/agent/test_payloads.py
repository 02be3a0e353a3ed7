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
    assert message.text.startswith("https://")  # media arrives as a URL in the text
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
    ],
)
def test_bad_bodies_name_the_problem(raw, field):
    with pytest.raises(PayloadError) as caught:
        payload_parse(raw=raw)
    assert caught.value.field == field
