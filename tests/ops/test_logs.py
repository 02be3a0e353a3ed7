"""Structured logs: JSON lines with the request id, carried from the webhook into the Celery task."""

import json
import logging

import pytest

from config.logs import ContextFilter, JsonLineFormatter, context
from tests.agent.conftest import SECRET, flat_body
from tests.agent.test_celery_worker import celery_worker  # noqa: F401 - the real worker fixture
from tests.factories import PromptVersionFactory


class _Collect(logging.Handler):
    def __init__(self):
        super().__init__(level=logging.DEBUG)
        self.addFilter(ContextFilter())
        self.records: list[logging.LogRecord] = []

    def emit(self, record):
        self.records.append(record)


@pytest.fixture
def collected():
    handler = _Collect()
    root = logging.getLogger()
    previous = root.level
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    yield handler
    root.removeHandler(handler)
    root.setLevel(previous)


def test_a_json_line_carries_the_ids_and_nothing_else():
    record = logging.LogRecord("agent.turn", logging.INFO, __file__, 1, "turn answered", (), None)
    with context(request_id="req-1", subscriber_id="777", message_id=42):
        ContextFilter().filter(record)
    line = json.loads(JsonLineFormatter().format(record))
    assert line["message"] == "turn answered" and line["level"] == "INFO" and line["logger"] == "agent.turn"
    assert (line["request_id"], line["subscriber_id"], line["message_id"]) == ("req-1", "777", "42")
    assert "timestamp" in line and "task" not in line


def _post(client, body, request_id):
    return client.post(
        "/webhooks/manychat/",
        data=json.dumps(body),
        content_type="application/json",
        HTTP_X_WEBHOOK_SECRET=SECRET,
        HTTP_X_REQUEST_ID=request_id,
    )


@pytest.mark.django_db
def test_the_webhook_logs_with_the_request_id_and_returns_it(client, settings, collected, fake_openai):
    settings.MANYCHAT_WEBHOOK_SECRET = SECRET
    PromptVersionFactory(is_active=True)
    fake_openai.reply_with({"reply": "Hello there!"})
    response = _post(client, flat_body(subscriber_id="515151", text="my secret plans"), "req-webhook-1")
    assert response["X-Request-ID"] == "req-webhook-1"
    stored = [r for r in collected.records if r.getMessage().startswith("webhook: message stored")]
    assert stored and stored[0].request_id == "req-webhook-1" and stored[0].subscriber_id == "515151"
    assert stored[0].message_id
    # Lead text never reaches a log line.
    assert not any("my secret plans" in r.getMessage() for r in collected.records)
    # A made-up header is not trusted as an id: a fresh one is issued.
    response = _post(client, flat_body(subscriber_id="515152"), "bad id with spaces")
    assert response["X-Request-ID"] != "bad id with spaces" and len(response["X-Request-ID"]) == 32


@pytest.mark.django_db(transaction=True)
def test_the_task_of_a_turn_logs_the_same_request_id(
    celery_worker,  # noqa: F811 - first: the worker reconfigures logging when it starts
    collected,
    client,
    settings,
    fake_openai,
    fake_manychat,
):
    settings.MANYCHAT_WEBHOOK_SECRET = SECRET
    settings.AGENT_ASYNC_MODE = True
    PromptVersionFactory(is_active=True)
    fake_openai.reply_with({"reply": "Answered by the worker."})
    _post(client, flat_body(subscriber_id="616161"), "req-async-7")
    assert fake_manychat.wait_for_calls(1, timeout=20), "the worker never delivered the reply"
    web = [r for r in collected.records if r.getMessage().startswith("webhook: message stored")]
    task = [r for r in collected.records if r.getMessage().startswith("task: completing turn")]
    assert web and task
    assert web[0].request_id == task[0].request_id == "req-async-7"
    assert task[0].task == "agent.complete_turn"
    assert str(task[0].message_id) == str(web[0].message_id)
