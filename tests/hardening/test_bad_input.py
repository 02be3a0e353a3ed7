"""D9: bodies that used to give a 500: deep nesting (RecursionError), a lone surrogate (UnicodeEncodeError
hashing the dedupe key, and PostgreSQL refusing it), NUL. Each is a 400 naming the body, or stored clean."""

import json

import pytest
from django.test import Client

from config.parsers import JSON_MAX_DEPTH, JsonBodyError, json_parse
from leads import roles
from leads.models import Lead, Message, MessageRole
from tests.factories import PromptVersionFactory
from tests.hardening.conftest import SECRET

DEEP = b'{"subscriber_id":"1001","text":"x","a":' + b"[" * 20_000 + b"]" * 20_000 + b"}"


def _webhook(raw: bytes):
    return Client().post(
        "/webhooks/manychat/", data=raw, content_type="application/json", HTTP_X_WEBHOOK_SECRET=SECRET
    )


@pytest.fixture
def agent(webhook_secret, settings, fake_openai, db):
    settings.AGENT_WEBHOOK_RATE_LIMIT = ""
    PromptVersionFactory(is_active=True)
    fake_openai.reply_with({"reply": "Hello there!"})
    return fake_openai


@pytest.mark.parametrize(
    "raw",
    [
        DEEP,
        b'{"subscriber_id":"1001","text":"x","a":' + b'{"b":' * 5000 + b"1" + b"}" * 5000 + b"}",
        b'{"subscriber_id":"1001","text":NaN}',
        b'{"subscriber_id":"1001","text":"x","n":Infinity}',
    ],
    ids=["20000 arrays", "5000 objects", "NaN", "Infinity"],
)
def test_hostile_json_is_a_400_naming_the_body_and_nothing_is_written(agent, raw):
    assert len(raw) < 64 * 1024
    response = _webhook(raw)
    assert response.status_code == 400
    assert response.json()["field"] == "body"
    assert Lead.objects.count() == 0 and Message.objects.count() == 0
    assert agent.calls == 0


@pytest.mark.parametrize(
    ("body", "stored"),
    [
        ('{"subscriber_id":"1002","text":"bad \\ud800 surrogate"}', "bad \ufffd surrogate"),
        ('{"subscriber_id":"1003","text":"cut emoji \\ud83d"}', "cut emoji \ufffd"),
        ('{"subscriber_id":"1004","text":"a real one \\ud83d\\ude00"}', "a real one \U0001f600"),
        ('{"subscriber_id":"1005","text":"nul \\u0000 inside"}', "nul  inside"),
        ('{"subscriber_id":"1006","text":"id with a surrogate","message_id":"m-\\udc00"}', None),
        ('{"subscriber_id":"1007","text":"id with a NUL","message_id":"m-\\u0000-1"}', None),
        ('{"subscriber_id":"1008","text":"name","first_name":"Ana \\ud800"}', None),
    ],
    ids=["lone high", "cut emoji", "valid pair", "NUL", "surrogate id", "NUL id", "surrogate name"],
)
def test_lone_surrogates_and_nul_are_stored_clean_and_answered(agent, body, stored):
    if (
        "message_id" not in body
    ):  # a redelivery is recognised by its id (a repeated text may be a new message)
        body = body[:-1] + ',"message_id":"mid-1"}'
    response = _webhook(body.encode())
    assert response.status_code == 200
    assert response.json()["content"]["messages"][0]["text"] == "Hello there!"
    message = Message.objects.get(role=MessageRole.LEAD)
    if stored is not None:
        assert message.text == stored
    # A retry of the same body is the same message (the dedupe key hashed without error).
    assert _webhook(body.encode()).status_code == 200
    assert Message.objects.filter(role=MessageRole.LEAD).count() == 1
    assert agent.calls == 1


def test_the_api_refuses_deep_json_with_a_400(make_user, db):
    client = Client()
    client.force_login(make_user(roles.OPERATOR))
    response = client.post("/api/training/submit/", data=DEEP, content_type="application/json")
    assert response.status_code == 400
    assert "nested deeper" in json.dumps(response.json())


def test_the_parser_counts_depth_outside_strings_only():
    text = "[" * 500 + "{" * 500
    assert json_parse(raw=json.dumps({"text": text}).encode()) == {"text": text}
    nested = "[" * JSON_MAX_DEPTH + "]" * JSON_MAX_DEPTH
    assert json_parse(raw=nested.encode()) is not None
    with pytest.raises(JsonBodyError):
        json_parse(raw=("[" + nested + "]").encode())
