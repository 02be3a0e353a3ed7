"""Export that outlives one vendor (issue #18, item 5)."""

import json

import pytest
from django.urls import reverse
from django.utils import timezone

from tests.factories import PromptVersionFactory, TrainingExampleFactory
from training.export import training_export_lines
from training.review.export import (
    FORMAT_CONVERSATIONAL,
    FORMAT_CONVERSATIONAL_PREFERENCE,
    conversational_validate,
)
from training.review.fields import DECIDED_AT
from training.review.selectors import ExampleFilters

pytestmark = pytest.mark.django_db


def _approved(**fields):
    # A fixed feedback: a random sentence could contain the words the filters search for ("hi" in "this").
    fields.setdefault("feedback", "Noted.")
    return TrainingExampleFactory(status="approved", **{DECIDED_AT: timezone.now()}, **fields)


@pytest.fixture
def examples(db):
    PromptVersionFactory(is_active=True, content="You are Ava.")
    return {
        "good": _approved(user_message="Hi", ai_response="Hello! How can I help?"),
        "correction": _approved(
            example_type="correction",
            user_message="Price?",
            ai_response="Dunno",
            expected_response="$300/month",
        ),
        "bad": _approved(example_type="bad", user_message="Cancel", ai_response="Too bad."),
        "retired": _approved(user_message="Old", ai_response="Old answer", retired_at=timezone.now()),
        "pending": TrainingExampleFactory(user_message="Pending", ai_response="x"),
    }


def _lines(fmt, **kwargs):
    return [json.loads(line) for line in training_export_lines(fmt=fmt, **kwargs)]


def test_conversational_messages_with_roles(examples):
    rows = _lines(FORMAT_CONVERSATIONAL)
    assert rows == [
        {
            "messages": [
                {"role": "system", "content": "You are Ava."},
                {"role": "user", "content": "Hi"},
                {"role": "assistant", "content": "Hello! How can I help?"},
            ]
        },
        {
            "messages": [
                {"role": "system", "content": "You are Ava."},
                {"role": "user", "content": "Price?"},
                {"role": "assistant", "content": "$300/month"},
            ]
        },
    ]


def test_preference_pairs_prompt_chosen_rejected(examples):
    assert _lines(FORMAT_CONVERSATIONAL_PREFERENCE) == [
        {
            "prompt": [{"role": "system", "content": "You are Ava."}, {"role": "user", "content": "Price?"}],
            "chosen": [{"role": "assistant", "content": "$300/month"}],
            "rejected": [{"role": "assistant", "content": "Dunno"}],
        }
    ]


def test_openai_chat_kept_and_retired_left_out(examples):
    rows = _lines("openai-chat")
    assert [row["messages"][1]["content"] for row in rows] == ["Hi", "Price?"]


@pytest.mark.parametrize(
    ("row", "fmt", "error"),
    [
        ({"messages": [{"role": "user", "content": "x"}]}, FORMAT_CONVERSATIONAL, "messages"),
        (
            {"messages": [{"role": "user", "content": "x"}, {"role": "bot", "content": "y"}]},
            FORMAT_CONVERSATIONAL,
            "role",
        ),
        (
            {"messages": [{"role": "user", "content": "x"}, {"role": "user", "content": "y"}]},
            FORMAT_CONVERSATIONAL,
            "last message",
        ),
        (
            {"messages": [{"role": "user", "content": "x"}, {"role": "assistant", "content": "  "}]},
            FORMAT_CONVERSATIONAL,
            "content",
        ),
        (
            {
                "prompt": [{"role": "user", "content": "q"}],
                "chosen": [{"role": "assistant", "content": "a"}],
                "rejected": [{"role": "assistant", "content": "a"}],
            },
            FORMAT_CONVERSATIONAL_PREFERENCE,
            "differ",
        ),
        (
            {
                "prompt": [{"role": "user", "content": "q"}],
                "chosen": [{"role": "user", "content": "a"}],
                "rejected": [{"role": "assistant", "content": "b"}],
            },
            FORMAT_CONVERSATIONAL_PREFERENCE,
            "chosen",
        ),
        ({"prompt": [], "chosen": [], "rejected": [], "extra": 1}, FORMAT_CONVERSATIONAL_PREFERENCE, "extra"),
    ],
)
def test_each_line_is_schema_validated(row, fmt, error):
    errors = conversational_validate(row=row, fmt=fmt)
    assert errors and any(error in e for e in errors), errors


def test_filters_narrow_the_export(examples):
    rows = _lines(FORMAT_CONVERSATIONAL, filters=ExampleFilters(status="approved", example_type="correction"))
    assert [row["messages"][1]["content"] for row in rows] == ["Price?"]
    rows = _lines("openai-chat", filters=ExampleFilters(status="approved", q="hi"))
    assert [row["messages"][1]["content"] for row in rows] == ["Hi"]


def test_download_buttons_on_the_examples_page_and_the_api_filters(examples, client, api, viewer):
    client.force_login(viewer)
    page = client.get(reverse("dashboard:training_library"), {"example_type": "correction"}).content.decode()
    assert 'href="/api/training/export/?format=conversational&amp;example_type=correction"' in page
    response = client.get("/api/training/export/?format=conversational&example_type=correction")
    assert response.status_code == 200
    body = b"".join(response.streaming_content).decode()
    assert [json.loads(line)["messages"][1]["content"] for line in body.splitlines()] == ["Price?"]
    bad = api(viewer).get("/api/training/export/?format=conversational&example_type=nope")
    assert bad.status_code == 400 and "example_type" in bad.data
