"""D1, D3 and D10 at the unit level (the fault suite drives them end to end through gunicorn):

* a reply counts as returned only once the server wrote it; a write to a connection ManyChat closed, or a
  write that failed, leaves it pending for the sweep, which sends it through sendContent once;
* a webhook that meets a stale connection stores the message on a fresh one instead of answering 503;
* a turn that breaks after storing is a counted, flagged failure (bounded retries)."""

import json
import socket

import pytest
from django.db import OperationalError, connection
from django.http import HttpResponse
from django.test import Client, RequestFactory

from agent import selectors, turn
from agent.payloads import InboundMessage
from config.confirm import response_confirm
from leads.models import DeliveryStatus, Message, MessageRole
from tests.factories import PromptVersionFactory
from tests.hardening.conftest import SECRET


def _confirmed(sock):
    request = RequestFactory().post("/webhooks/manychat/")
    request.META["gunicorn.socket"] = sock
    events: list[str] = []
    response = response_confirm(
        request=request,
        response=HttpResponse(b'{"version": "v2"}'),
        on_written=lambda: events.append("written"),
        on_lost=lambda: events.append("lost"),
    )
    return response, events


def test_a_body_written_whole_to_an_open_connection_is_confirmed(
    db,
):  # close() ends the request (its signal closes connections)
    ours, theirs = socket.socketpair()
    with ours, theirs:
        response, events = _confirmed(ours)
        assert b"".join(response) == b'{"version": "v2"}'
        response.close()
    assert events == ["written"]


def test_nothing_is_written_to_a_connection_the_client_closed(
    db,
):  # close() ends the request (its signal closes connections)
    ours, theirs = socket.socketpair()
    theirs.close()  # ManyChat gave up after 10 s
    with ours:
        response, events = _confirmed(ours)
        assert b"".join(response) == b""
        response.close()
    assert events == ["lost"]


def test_a_write_that_failed_half_way_is_lost(db):
    ours, theirs = socket.socketpair()
    with ours, theirs:
        response, events = _confirmed(ours)
        chunks = iter(response)
        next(chunks)  # the server took the chunk, then its write raised: it never asks for more
        response.close()
    assert events == ["lost"]


def _webhook(body: dict):
    return Client().post(
        "/webhooks/manychat/",
        data=json.dumps(body),
        content_type="application/json",
        HTTP_X_WEBHOOK_SECRET=SECRET,
    )


def _stored(**fields):
    return turn.inbound_store(inbound=InboundMessage(**fields))


@pytest.fixture
def agent(webhook_secret, settings, fake_openai, db):
    settings.AGENT_WEBHOOK_RATE_LIMIT = ""
    settings.AGENT_RETRY_AFTER_SECONDS = 0
    PromptVersionFactory(is_active=True)
    fake_openai.reply_with({"reply": "Here you go."})
    return fake_openai


def test_a_reply_whose_response_was_lost_is_sent_once_by_the_sweep(agent, fake_manychat, settings):
    settings.CELERY_TASK_ALWAYS_EAGER = True
    # The first attempt's turn, as the webhook runs it; its response then never reaches ManyChat.
    stored = turn.inbound_store(
        inbound=turn.InboundMessage(subscriber_id="5001", text="hours?", message_id="a")
    )
    outcome = turn.turn_run_in_webhook(stored=stored, started=__import__("time").monotonic())
    assert outcome.confirm and outcome.reply is not None
    reply = Message.objects.get(pk=outcome.reply.pk)
    assert reply.delivery_status == DeliveryStatus.UNKNOWN  # in flight: not counted as delivered
    assert selectors.turn_list_incomplete().undelivered == []  # and no one else sends it meanwhile
    turn.reply_release(message_id=reply.pk)  # the server could not write it (config.confirm: on_lost)
    due = selectors.turn_list_incomplete()
    assert due.undelivered == [stored.message.pk]
    from agent.tasks import retry_incomplete_turns

    retry_incomplete_turns()
    retry_incomplete_turns()  # a second sweep sends nothing more
    assert fake_manychat.sent_texts() == ["Here you go."]
    assert Message.objects.get(pk=reply.pk).delivery_status == DeliveryStatus.SENT


def test_a_retry_while_the_reply_is_unconfirmed_carries_it_and_the_sweep_does_not(agent, fake_manychat):
    stored = turn.inbound_store(
        inbound=turn.InboundMessage(subscriber_id="5002", text="price?", message_id="b")
    )
    first = turn.turn_run_in_webhook(stored=stored, started=__import__("time").monotonic())
    assert first.confirm
    turn.reply_release(message_id=first.reply.pk)  # ... and its write is lost
    response = _webhook({"subscriber_id": "5002", "text": "price?", "message_id": "b"})
    assert [m["text"] for m in response.json()["content"]["messages"]] == ["Here you go."]
    reply = Message.objects.get(pk=first.reply.pk)
    assert reply.delivery_status == DeliveryStatus.RETURNED  # the retry's response confirmed it
    assert selectors.turn_list_incomplete().undelivered == []
    assert fake_manychat.sent_texts() == []


@pytest.mark.django_db(transaction=True)  # as in production: no transaction around the request
def test_a_stale_connection_is_retried_once_and_the_message_stored(agent):
    failures = {"left": 1}

    def stale_once(execute, sql, params, many, context):
        if failures["left"] and sql.lstrip().upper().startswith('INSERT INTO "MESSAGES"'):
            failures["left"] -= 1
            raise OperationalError("terminating connection due to administrator command")
        return execute(sql, params, many, context)

    with connection.execute_wrapper(stale_once):
        response = _webhook({"subscriber_id": "5003", "text": "still there?", "message_id": "c"})
    assert response.status_code == 200
    assert Message.objects.filter(role=MessageRole.LEAD, text="still there?").count() == 1


def test_the_sweep_backs_off_per_message_and_stops(settings):
    from datetime import timedelta

    from django.utils import timezone

    settings.AGENT_RETRY_AFTER_SECONDS = 60
    now = timezone.now()
    rows = [
        (1, 0, now - timedelta(seconds=61)),  # first retry: after 1 minute
        (2, 1, now - timedelta(seconds=61)),  # second: not before 2 minutes
        (3, 1, now - timedelta(seconds=121)),
        (4, 2, now - timedelta(seconds=239)),  # third: not before 4 minutes
        (5, 2, now - timedelta(seconds=241)),
        (6, 3, now - timedelta(hours=5)),  # out of attempts: never again
    ]
    assert selectors._due(rows=rows, now=now, max_attempts=3) == {1, 3, 5}
