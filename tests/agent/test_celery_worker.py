"""A real Celery worker consuming from Redis finishes an async turn and the beat sweep's task."""

import os

import pytest
from django.db import connection

from leads.models import DeliveryStatus, Message, MessageRole
from tests.agent.conftest import flat_body
from tests.factories import MessageFactory, PromptVersionFactory

pytestmark = [pytest.mark.celery_worker, pytest.mark.django_db(transaction=True)]

REDIS_URL = os.environ.get("TEST_REDIS_URL", "")


def _reset_pool(app) -> None:
    """Drop producer connections made for another broker URL (Celery caches them on the app)."""
    from kombu import pools

    if app._pool is not None:
        app._pool.force_close_all()
    app._pool = None
    app.amqp._producer_pool = None
    pools.reset()


@pytest.fixture
def celery_worker(settings):
    if not REDIS_URL:
        pytest.skip(
            "TEST_REDIS_URL is not set (e.g. redis://127.0.0.1:6379/5): no Redis broker for a real worker"
        )
    from celery.contrib.testing.worker import start_worker

    from config.celery import app

    settings.CELERY_TASK_ALWAYS_EAGER = False
    previous = {key: app.conf[key] for key in ("broker_url", "task_always_eager", "result_backend")}
    app.conf.update(broker_url=REDIS_URL, task_always_eager=False, result_backend=None)
    _reset_pool(app)
    with app.connection_for_write() as conn:
        conn.default_channel.queue_purge("celery")
    try:
        with start_worker(
            app,
            pool="threads",
            concurrency=2,
            perform_ping_check=False,
            loglevel="WARNING",
            shutdown_timeout=10,
        ):
            yield app
    finally:
        app.conf.update(**previous)
        _reset_pool(app)
        connection.close()


def test_async_turn_is_finished_by_the_worker(webhook, celery_worker, fake_openai, fake_manychat, settings):
    PromptVersionFactory(is_active=True)
    settings.AGENT_ASYNC_MODE = True
    fake_openai.reply_with({"reply": "Answered by the worker."})
    response = webhook(flat_body(subscriber_id="31337"))
    assert response.json()["content"]["messages"] == []
    assert fake_manychat.wait_for_calls(1, timeout=20), "the worker never delivered the reply"
    assert fake_manychat.sent_texts() == ["Answered by the worker."]
    assert fake_manychat.sent()[0]["subscriber_id"] == 31337


def test_beat_sweep_queues_incomplete_turns_for_the_worker(
    celery_worker, fake_openai, fake_manychat, settings
):
    from agent.tasks import retry_incomplete_turns

    PromptVersionFactory(is_active=True)
    settings.AGENT_RETRY_AFTER_SECONDS = 0
    inbound = MessageFactory(text="anyone there?", delivery_status=DeliveryStatus.FAILED, attempts=1)
    fake_openai.reply_with({"reply": "Yes, sorry for the delay!"})
    retry_incomplete_turns.delay()
    assert fake_manychat.wait_for_calls(1, timeout=20), "the sweep's turn was never delivered"
    assert fake_manychat.sent_texts() == ["Yes, sorry for the delay!"]
    assert fake_openai.calls == 1
    reply = Message.objects.filter(in_reply_to=inbound, role=MessageRole.AGENT).first()
    assert reply is not None
