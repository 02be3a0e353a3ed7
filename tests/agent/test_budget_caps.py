"""Spend is bounded: the agent's daily caps (overall and per lead) are checked before the model call, and a
turn over a cap is handed to a person with the reason, with a valid answer to ManyChat and no model call."""

import os
import threading
from datetime import timedelta
from decimal import Decimal

import pytest
from django.core.cache import caches
from django.test import override_settings
from django.utils import timezone

from agent import budget, turn
from agent.spend import selectors as spend_selectors
from leads.models import Activity, DeliveryStatus, Lead, Message, MessageRole, Notification
from tests.agent.conftest import flat_body
from tests.factories import AgentMessageFactory, ConversationFactory, LeadFactory, UserFactory

pytestmark = pytest.mark.django_db

REDIS_URL = os.environ.get("TEST_REDIS_URL", "")
PRICED = "gpt-4o-mini"  # 0.15 / 0.60 USD per million tokens in the default price table


def texts(response) -> list[str]:
    return [m["text"] for m in response.json()["content"]["messages"]]


@pytest.fixture(autouse=True)
def _caps(settings):
    settings.AGENT_MODEL_PRICES = {PRICED: (Decimal("0.15"), Decimal("0.60"))}
    settings.OPENAI_MODEL = PRICED
    settings.AGENT_TURN_ESTIMATE_TOKENS = 1000
    for name in (
        "AGENT_DAILY_TOKEN_CAP",
        "AGENT_DAILY_USD_CAP",
        "AGENT_LEAD_DAILY_TOKEN_CAP",
        "AGENT_LEAD_DAILY_USD_CAP",
    ):
        setattr(settings, name, 0)


def _spent_today(*, lead=None, prompt_tokens: int, completion_tokens: int = 0):
    conversation = ConversationFactory(lead=lead) if lead is not None else ConversationFactory()
    return AgentMessageFactory(
        conversation=conversation,
        model=PRICED,
        prompt_tokens=prompt_tokens,
        completion_tokens=completion_tokens,
    )


# Each cap, and spend that reaches it: 100,000 prompt tokens of gpt-4o-mini cost $0.015.
CAPS = [
    ("AGENT_DAILY_TOKEN_CAP", 100_000, "other"),
    ("AGENT_DAILY_USD_CAP", 0.015, "other"),
    ("AGENT_LEAD_DAILY_TOKEN_CAP", 100_000, "same"),
    ("AGENT_LEAD_DAILY_USD_CAP", 0.015, "same"),
]


@pytest.mark.parametrize(("setting", "cap", "whose"), CAPS)
def test_a_reached_cap_hands_the_turn_to_a_person_with_the_reason(
    webhook, active_prompt, fake_openai, settings, make_user, setting, cap, whose
):
    setattr(settings, setting, cap)
    manager = make_user("operator")
    lead = LeadFactory(manychat_subscriber_id="9001") if whose == "same" else None
    _spent_today(lead=lead, prompt_tokens=100_000)

    response = webhook(flat_body(subscriber_id="9001", text="How much is it?"))

    assert response.status_code == 200
    assert texts(response) == [
        settings.AGENT_BUDGET_HANDOFF_TEXT
    ]  # a valid answer, never an error or silence
    assert fake_openai.calls == 0  # nothing went to the model
    lead = Lead.objects.get(manychat_subscriber_id="9001")
    assert lead.needs_human and lead.bot_paused and lead.waiting_since is not None
    assert setting in lead.handoff_reason
    inbound = Message.objects.get(conversation__lead=lead, role=MessageRole.LEAD)
    assert inbound.delivery_status == DeliveryStatus.SKIPPED and setting in inbound.error
    # The one line the lead got is the handoff line, no model reply (and no tokens).
    line = Message.objects.get(
        conversation__lead=lead, role=MessageRole.AGENT, in_reply_to=None, model="budget"
    )
    assert (line.prompt_tokens, line.prompt_version_id) == (None, None)
    assert Message.objects.filter(conversation__lead=lead, role=MessageRole.AGENT).count() == (
        2 if whose == "same" else 1
    )
    activity = Activity.objects.get(lead=lead, verb="agent.budget_cap")
    assert activity.data["cap"] == setting and activity.data["message_id"] == inbound.pk
    notified = Notification.objects.get(recipient=manager, verb="agent.budget_handoff")
    assert setting in notified.message


def test_under_the_caps_the_turn_goes_to_the_model_and_is_counted(
    webhook, active_prompt, fake_openai, settings
):
    settings.AGENT_DAILY_TOKEN_CAP = 1_000_000
    settings.AGENT_LEAD_DAILY_USD_CAP = 1.0
    settings.AGENT_MODEL_PRICES = {**settings.AGENT_MODEL_PRICES, "fake-gpt": (Decimal(1), Decimal(2))}
    response = webhook(flat_body(subscriber_id="9001"))
    assert texts(response) == ["Thanks! How can I help?"]
    assert fake_openai.calls == 1
    lead = Lead.objects.get(manychat_subscriber_id="9001")
    # The counters hold the real usage (120 + 30 tokens from the fake), not the reservation of 1,000.
    day = timezone.localdate()
    tokens_key = budget._key(purpose="agent", day=day, lead_id=None, unit="tokens")
    usd_key = budget._key(purpose="agent", day=day, lead_id=lead.pk, unit="usd")
    assert caches["default"].get(tokens_key) == 150
    assert caches["default"].get(usd_key) == spend_selectors.usd_micros(
        spend_selectors.price_usd(model="fake-gpt", prompt_tokens=120, completion_tokens=30)
    )


def test_the_per_lead_cap_stops_one_lead_and_not_the_others(webhook, active_prompt, fake_openai, settings):
    settings.AGENT_LEAD_DAILY_TOKEN_CAP = 5_000
    settings.AGENT_DAILY_TOKEN_CAP = 10_000_000
    heavy = LeadFactory(manychat_subscriber_id="9001")
    _spent_today(lead=heavy, prompt_tokens=4_500)  # 4,500 + a 1,000 estimate > 5,000

    refused = webhook(flat_body(subscriber_id="9001", text="more please"))
    answered = webhook(flat_body(subscriber_id="9002", text="hello"))

    assert texts(refused) == [settings.AGENT_BUDGET_HANDOFF_TEXT]
    assert texts(answered) == ["Thanks! How can I help?"]
    assert fake_openai.calls == 1
    assert "AGENT_LEAD_DAILY_TOKEN_CAP" in Lead.objects.get(pk=heavy.pk).handoff_reason
    assert not Lead.objects.get(manychat_subscriber_id="9002").needs_human


def test_yesterdays_spend_does_not_count(webhook, active_prompt, fake_openai, settings):
    settings.AGENT_DAILY_TOKEN_CAP = 100_000
    old = _spent_today(prompt_tokens=500_000)
    Message.objects.filter(pk=old.pk).update(created_at=timezone.now() - timedelta(days=1, hours=1))
    assert texts(webhook(flat_body())) == ["Thanks! How can I help?"]


def test_the_task_path_sends_the_handoff_line_through_sendcontent(
    active_prompt, fake_openai, fake_manychat, settings
):
    settings.AGENT_DAILY_USD_CAP = 0.001
    _spent_today(prompt_tokens=100_000)
    lead = LeadFactory()
    conversation = ConversationFactory(lead=lead)
    inbound = Message.objects.create(conversation=conversation, role=MessageRole.LEAD, text="hi there")

    state = turn.turn_complete(message_id=inbound.pk)

    assert state == turn.TurnState.BUDGET_HANDOFF
    assert fake_openai.calls == 0
    sent = Message.objects.get(conversation=conversation, role=MessageRole.AGENT)
    assert sent.text == settings.AGENT_BUDGET_HANDOFF_TEXT and sent.model == "budget"
    assert sent.delivery_status == DeliveryStatus.SENT
    assert len(fake_manychat.sent()) == 1
    # The bot is paused now: the lead's next message waits for a person without a model call.
    again = Message.objects.create(conversation=conversation, role=MessageRole.LEAD, text="hello?")
    assert turn.turn_complete(message_id=again.pk) == turn.TurnState.SKIPPED


def test_the_common_turn_adds_no_sql_statement_once_the_days_counters_exist(
    webhook, active_prompt, fake_openai, settings, django_assert_num_queries
):
    settings.AGENT_DAILY_TOKEN_CAP = 1_000_000
    settings.AGENT_DAILY_USD_CAP = 10.0
    settings.AGENT_LEAD_DAILY_TOKEN_CAP = 100_000
    settings.AGENT_LEAD_DAILY_USD_CAP = 1.0
    lead = LeadFactory()
    budget.budget_release(reservation=budget.budget_reserve(lead_id=lead.pk))  # seeds today's counters
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as seen:
        reservation = budget.budget_reserve(lead_id=lead.pk)
        budget.budget_settle(reservation=reservation, model=PRICED, prompt_tokens=10, completion_tokens=5)
    assert len(seen.captured_queries) == 0


# --- Concurrency: reservations never overshoot --------------------------------------------------------------


def _cache_backends():
    backends = [pytest.param("locmem", id="locmem")]
    backends.append(
        pytest.param(
            "redis",
            id="redis",
            marks=pytest.mark.skipif(not REDIS_URL, reason="TEST_REDIS_URL is not set"),
        )
    )
    return backends


@pytest.mark.parametrize("backend", _cache_backends())
def test_concurrent_turns_cannot_both_spend_the_last_slice_of_a_money_cap(settings, backend):
    if backend == "redis":
        cache_settings = {
            "default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": REDIS_URL}
        }
    else:
        cache_settings = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
    with override_settings(CACHES=cache_settings):
        caches["default"].clear()
        estimate = budget._estimate(tokens=1000, model=PRICED)  # 600 micro-USD at the output price
        settings.AGENT_DAILY_USD_CAP = float(Decimal(estimate * 10 + estimate // 2) / 1_000_000)
        budget.budget_release(reservation=budget.budget_reserve())  # seed (the one query) before the threads
        cap = budget.caps_for(purpose="agent")[0].limit
        workers = 40
        barrier = threading.Barrier(workers)
        granted: list[budget.Reservation] = []
        refused: list[str] = []

        def one_turn() -> None:
            barrier.wait()
            try:
                reservation = budget.budget_reserve()
            except budget.BudgetExceeded as exc:
                refused.append(exc.refusal.cap.setting)
                return
            granted.append(reservation)
            # Every call uses exactly its estimate's worth: 1000 output tokens.
            budget.budget_settle(
                reservation=reservation, model=PRICED, prompt_tokens=0, completion_tokens=1000
            )

        threads = [threading.Thread(target=one_turn) for _ in range(workers)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        spent = caches["default"].get(
            budget._key(purpose="agent", day=timezone.localdate(), lead_id=None, unit="usd")
        )
        caches["default"].clear()

    assert len(granted) == 10  # ten estimates fit under 10.5 estimates; the eleventh never passes
    assert len(refused) == workers - 10 and set(refused) == {"AGENT_DAILY_USD_CAP"}
    assert spent == 10 * estimate <= cap  # no overshoot at all when calls cost their estimate
    assert spent <= cap + estimate


def test_a_call_that_costs_more_than_its_estimate_overshoots_by_at_most_that_call(settings):
    settings.AGENT_DAILY_TOKEN_CAP = 2_500
    first = budget.budget_reserve(estimate_tokens=1000)
    second = budget.budget_reserve(estimate_tokens=1000)
    with pytest.raises(budget.BudgetExceeded):
        budget.budget_reserve(estimate_tokens=1000)
    budget.budget_settle(reservation=first, model=PRICED, prompt_tokens=1500, completion_tokens=0)
    budget.budget_settle(reservation=second, model=PRICED, prompt_tokens=500, completion_tokens=0)
    key = budget._key(purpose="agent", day=timezone.localdate(), lead_id=None, unit="tokens")
    assert caches["default"].get(key) == 2000
    third = budget.budget_reserve(estimate_tokens=400)
    budget.budget_settle(reservation=third, model=PRICED, prompt_tokens=900, completion_tokens=0)
    assert caches["default"].get(key) == 2900 <= 2_500 + 900  # over by less than the one call that overran
    with pytest.raises(budget.BudgetExceeded, match="AGENT_DAILY_TOKEN_CAP"):
        budget.budget_reserve(estimate_tokens=1)


def test_a_failed_call_gives_its_reservation_back(settings):
    settings.AGENT_DAILY_TOKEN_CAP = 1_500
    reservation = budget.budget_reserve(estimate_tokens=1000)
    budget.budget_release(reservation=reservation)
    budget.budget_release(reservation=reservation)  # twice is harmless
    budget.budget_reserve(estimate_tokens=1000)  # fits again


def test_no_caps_means_no_counter_at_all(settings):
    reservation = budget.budget_reserve(lead_id=LeadFactory().pk)
    assert reservation.keys == []


def test_notified_people_hold_the_change_lead_permission(
    webhook, active_prompt, fake_openai, settings, make_user
):
    settings.AGENT_DAILY_TOKEN_CAP = 10
    viewer = make_user("viewer")
    operator = UserFactory(role="operator", username="op2")
    webhook(flat_body())
    assert Notification.objects.filter(recipient=operator, verb="agent.budget_handoff").exists()
    assert not Notification.objects.filter(recipient=viewer).exists()


@pytest.mark.django_db(transaction=True)
def test_two_concurrent_webhook_turns_cannot_both_take_the_last_slice_of_the_money_cap(
    active_prompt, fake_openai, settings
):
    """Two leads write at the same moment; the money cap holds one call's estimate and a half. Whichever
    turn reserves first goes to the model (slow, so both are in flight together); the other is handed to a
    person. The real spend stays under the cap: never both calls."""
    import json

    from django.db import connection as db_connection
    from django.test import Client
    from django.urls import reverse

    from tests.agent.conftest import SECRET

    settings.AGENT_MODEL_PRICES = {"fake-gpt": (Decimal("0.15"), Decimal("0.60"))}
    settings.OPENAI_MODEL = "fake-gpt"
    estimate = budget._estimate(tokens=settings.AGENT_TURN_ESTIMATE_TOKENS, model="fake-gpt")
    settings.AGENT_DAILY_USD_CAP = float(Decimal(estimate * 3 // 2) / 1_000_000)
    fake_openai.reply_with({"reply": "From the model.", "qualified": False}, delay=1.5)
    barrier = threading.Barrier(2)
    answers: dict[str, list[str]] = {}

    def write(subscriber_id: str) -> None:
        try:
            barrier.wait()
            response = Client().post(
                reverse("webhooks:manychat"),
                data=json.dumps(flat_body(subscriber_id=subscriber_id)),
                content_type="application/json",
                HTTP_X_WEBHOOK_SECRET=SECRET,
            )
            answers[subscriber_id] = texts(response)
        finally:
            db_connection.close()

    threads = [threading.Thread(target=write, args=(sid,)) for sid in ("7001", "7002")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert sorted(answers.values()) == sorted([["From the model."], [settings.AGENT_BUDGET_HANDOFF_TEXT]])
    assert fake_openai.calls == 1
    handed = Lead.objects.get(needs_human=True)
    assert "AGENT_DAILY_USD_CAP" in handed.handoff_reason
    spent = spend_selectors.agent_spent_on(day=timezone.localdate())
    assert 0 < spent.micros <= estimate * 3 // 2  # under the cap: one call, at its real price
