import io
import json

import pytest
from django.core.management import call_command

from tests.factories import AgentMessageFactory, ConversationFactory, MessageFactory, PromptVersionFactory
from training.export import training_export_lines, training_export_validate
from training.models import ExampleStatus, ExampleType

pytestmark = pytest.mark.django_db

EXPORT = "/api/training/export/"


@pytest.fixture
def dataset(approved, versions):
    """A good and a correction example under the active v1, one written by the older v0, a bad one and a
    pending one (both left out)."""
    active, _ = versions
    old = PromptVersionFactory(version=9, content="Old prompt v9.")
    conversation = ConversationFactory()
    asked = MessageFactory(conversation=conversation, text="Price?")
    flagged = AgentMessageFactory(
        conversation=conversation, text="Ask sales.", in_reply_to=asked, prompt_version=old
    )
    good = approved(ExampleType.GOOD, user_message="Hi there", ai_response="Hello! How can I help?")
    correction = approved(
        ExampleType.CORRECTION,
        conversation=conversation,
        message=flagged,
        user_message="Price?",
        ai_response="Ask sales.",
        expected_response="From 49 euros a month.",
    )
    approved(ExampleType.BAD, user_message="Refund?", ai_response="No.")
    from tests.factories import TrainingExampleFactory

    TrainingExampleFactory(example_type=ExampleType.GOOD, status=ExampleStatus.PENDING)
    return active, good, correction


def test_openai_chat_lines_are_exact(dataset):
    active, _, _ = dataset
    lines = list(training_export_lines(fmt="openai-chat"))
    assert lines == [
        json.dumps(
            {
                "messages": [
                    {"role": "system", "content": active.content},
                    {"role": "user", "content": "Hi there"},
                    {"role": "assistant", "content": "Hello! How can I help?"},
                ]
            }
        )
        + "\n",
        json.dumps(
            {
                "messages": [
                    {"role": "system", "content": "Old prompt v9."},
                    {"role": "user", "content": "Price?"},
                    {"role": "assistant", "content": "From 49 euros a month."},
                ]
            }
        )
        + "\n",
    ]


def test_preference_lines_pair_the_correction_with_the_original(dataset):
    assert list(training_export_lines(fmt="preference")) == [
        json.dumps(
            {
                "input": {
                    "messages": [
                        {"role": "system", "content": "Old prompt v9."},
                        {"role": "user", "content": "Price?"},
                    ]
                },
                "preferred_output": [{"role": "assistant", "content": "From 49 euros a month."}],
                "non_preferred_output": [{"role": "assistant", "content": "Ask sales."}],
            }
        )
        + "\n"
    ]


def test_a_row_that_breaks_the_rules_is_reported_and_never_written(approved, versions):
    blank = approved(ExampleType.GOOD, user_message="   ", ai_response="Hello!")
    same = approved(
        ExampleType.CORRECTION, user_message="Price?", ai_response="49 euros.", expected_response="49 euros."
    )
    fine = approved(ExampleType.GOOD, user_message="Hi", ai_response="Hello!")
    skipped: dict[int, list[str]] = {}
    chat = list(
        training_export_lines(fmt="openai-chat", on_skip=lambda pk, errors: skipped.update({pk: errors}))
    )
    assert [json.loads(line)["messages"][1]["content"] for line in chat] == ["Price?", "Hi"]
    assert skipped == {blank.pk: ["messages[1].content must be a non-empty string"]}
    skipped.clear()
    assert (
        list(training_export_lines(fmt="preference", on_skip=lambda pk, errors: skipped.update({pk: errors})))
        == []
    )
    assert skipped == {same.pk: ["the preferred and non-preferred outputs must differ"]}
    assert fine.pk not in skipped


def test_without_any_prompt_the_system_message_is_left_out(approved, db):
    approved(ExampleType.GOOD, user_message="Hi", ai_response="Hello!")
    (line,) = training_export_lines(fmt="openai-chat")
    assert json.loads(line) == {
        "messages": [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello!"}]
    }


USER = {"role": "user", "content": "Hi"}
BOT = {"role": "assistant", "content": "Hello"}
SYSTEM = {"role": "system", "content": "Be nice."}


@pytest.mark.parametrize(
    ("fmt", "row", "error"),
    [
        ("openai-chat", {"messages": [SYSTEM, USER, BOT]}, None),
        ("openai-chat", {"messages": [USER, BOT], "extra": 1}, "exactly the key messages"),
        ("openai-chat", {"messages": []}, "non-empty list"),
        ("openai-chat", {"messages": [SYSTEM, USER]}, "the last message must be the assistant's"),
        ("openai-chat", {"messages": [SYSTEM, BOT]}, "at least one user message"),
        ("openai-chat", {"messages": [USER, SYSTEM, BOT]}, "a system message may only come first"),
        ("openai-chat", {"messages": [USER, {"role": "bot", "content": "x"}]}, "role must be one of"),
        ("openai-chat", {"messages": [USER, {"role": "assistant", "content": 5}]}, "non-empty string"),
        ("openai-chat", {"messages": [USER, USER, BOT]}, "must alternate"),
        (
            "openai-chat",
            {"messages": [USER, {"role": "assistant", "content": "x", "name": "a"}]},
            "exactly the keys",
        ),
        ("openai-chat", ["not", "an", "object"], "must be a JSON object"),
        (
            "preference",
            {
                "input": {"messages": [SYSTEM, USER]},
                "preferred_output": [BOT],
                "non_preferred_output": [{**BOT, "content": "No"}],
            },
            None,
        ),
        (
            "preference",
            {
                "input": {"messages": [USER, BOT]},
                "preferred_output": [BOT],
                "non_preferred_output": [{**BOT, "content": "No"}],
            },
            "must end with the user's message",
        ),
        (
            "preference",
            {"input": {"messages": [USER]}, "preferred_output": [USER], "non_preferred_output": [BOT]},
            "preferred_output[0].role must be assistant",
        ),
        (
            "preference",
            {"input": {"messages": [USER]}, "preferred_output": [BOT, BOT], "non_preferred_output": [BOT]},
            "exactly one message",
        ),
        (
            "preference",
            {"input": {"messages": [USER]}, "preferred_output": [BOT]},
            "must have exactly the keys",
        ),
        (
            "preference",
            {"input": "Hi", "preferred_output": [BOT], "non_preferred_output": [BOT]},
            "input must be",
        ),
    ],
)
def test_validation_rules(fmt, row, error):
    errors = training_export_validate(row=row, fmt=fmt)
    if error is None:
        assert errors == []
    else:
        assert any(error in message for message in errors), errors


def test_the_command_writes_stdout_or_a_file(dataset, tmp_path):
    out, err = io.StringIO(), io.StringIO()
    call_command("export_training", "--format", "openai-chat", stdout=out, stderr=err)
    assert out.getvalue() == "".join(training_export_lines(fmt="openai-chat"))
    assert "Wrote 2 openai-chat lines; skipped 0." in err.getvalue()
    target = tmp_path / "pairs.jsonl"
    call_command("export_training", "--format", "preference", "--output", str(target), stdout=out, stderr=err)
    assert target.read_text() == "".join(training_export_lines(fmt="preference"))
    assert len(target.read_text().splitlines()) == 1


def test_the_command_reports_skipped_rows(approved, versions):
    bad = approved(ExampleType.GOOD, user_message="  ", ai_response="Hello!")
    out, err = io.StringIO(), io.StringIO()
    call_command("export_training", stdout=out, stderr=err)
    assert out.getvalue() == ""
    assert f"Skipped example #{bad.pk}: messages[1].content must be a non-empty string" in err.getvalue()


@pytest.mark.parametrize(
    ("role", "status"), [(None, 403), ("viewer", 200), ("operator", 200), ("manager", 200)]
)
def test_api_permissions(client, make_user, dataset, role, status):
    client.force_login(make_user(role, username=f"u_{role}"))
    response = client.get(EXPORT, {"format": "openai-chat"})
    assert response.status_code == status


def test_api_requires_sign_in(client, dataset):
    assert client.get(EXPORT, {"format": "openai-chat"}).status_code in (401, 403)


@pytest.mark.parametrize("fmt", ["openai-chat", "preference"])
def test_api_streams_jsonl(client, viewer, dataset, fmt):
    client.force_login(viewer)
    response = client.get(EXPORT, {"format": fmt})
    assert response.status_code == 200 and response.streaming
    assert response["Content-Type"] == "application/jsonl"
    assert response["Content-Disposition"] == f'attachment; filename="training_{fmt}.jsonl"'
    assert b"".join(response.streaming_content).decode() == "".join(training_export_lines(fmt=fmt))


@pytest.mark.parametrize("query", [{"format": "csv"}, {}, {"format": ""}])
def test_api_refuses_a_bad_format(client, viewer, dataset, query):
    client.force_login(viewer)
    response = client.get(EXPORT, query)
    assert response.status_code == 400
    assert "format" in response.json()


def test_the_command_stops_quietly_when_the_reader_goes_away(db):
    from django.utils import timezone

    from tests.factories import TrainingExampleFactory

    TrainingExampleFactory.create_batch(3, status="approved", decided_at=timezone.now())

    class ClosedPipe:
        def write(self, text):
            raise BrokenPipeError

        def flush(self):
            pass

    errors = io.StringIO()
    call_command("export_training", stdout=ClosedPipe(), stderr=errors)  # must not raise
    assert "Wrote" not in errors.getvalue()
