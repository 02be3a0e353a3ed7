"""Cost per conversation (lead page, inbox), the month's spend against the budget, and the budget alert."""

from datetime import date, datetime, timedelta
from decimal import Decimal

import pytest
from django.core import mail
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from agent import budget
from agent.models import BudgetAlert, SpendDay
from agent.spend import selectors, services
from leads.models import Conversation, Message, Notification
from tests.factories import AgentMessageFactory, ConversationFactory, LeadFactory, MessageFactory

pytestmark = pytest.mark.django_db

PRICES = {
    "gpt-4o-mini": (Decimal("0.15"), Decimal("0.60")),
    "gpt-6-luna": (Decimal("0.10"), Decimal("0.50")),
}


@pytest.fixture(autouse=True)
def _prices(settings):
    settings.AGENT_MODEL_PRICES = PRICES
    settings.SPEND_MONTHLY_BUDGET_USD = 10.0
    settings.SPEND_ALERT_EMAILS = []


def _conversation_with_replies(lead, n: int):
    Conversation.objects.filter(lead=lead, status="open").update(status="closed")
    conversation = ConversationFactory(lead=lead)
    models = ["gpt-4o-mini", "gpt-6-luna-2026-10-01", "unpriced-model"]
    for i in range(n):
        MessageFactory(conversation=conversation, text=f"question {i}")
        AgentMessageFactory(
            conversation=conversation,
            model=models[i % 3],
            prompt_tokens=1000 + 37 * i,
            completion_tokens=200 + 11 * i,
        )
    return conversation


def _sql_cost(lead_id: int) -> tuple[int, Decimal]:
    """The same figure from SQL: tokens summed per model, priced by the table (snapshots by family)."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT m.model, COALESCE(SUM(m.prompt_tokens), 0), COALESCE(SUM(m.completion_tokens), 0) "
            "FROM messages m JOIN conversations c ON c.id = m.conversation_id "
            "WHERE c.lead_id = %s AND m.role = 'agent' GROUP BY m.model",
            [lead_id],
        )
        rows = cursor.fetchall()
    tokens, usd = 0, Decimal(0)
    for model, given, taken in rows:
        tokens += given + taken
        family = next(
            (name for name in sorted(PRICES, key=len, reverse=True) if model.startswith(name)), None
        )
        if family is not None:
            per_in, per_out = PRICES[family]
            usd += (Decimal(given) * per_in + Decimal(taken) * per_out) / Decimal(1_000_000)
    return tokens, usd


def test_cost_per_conversation_matches_a_direct_sql_sum_in_one_query(django_assert_num_queries):
    lead = LeadFactory()
    _conversation_with_replies(lead, 7)
    _conversation_with_replies(lead, 4)  # a second conversation of the same lead counts too
    _conversation_with_replies(LeadFactory(), 5)  # another lead's does not

    with django_assert_num_queries(1):
        spend = selectors.lead_spend(lead_id=lead.pk)

    tokens, usd = _sql_cost(lead.pk)
    assert spend.tokens == tokens and spend.usd == usd and spend.usd > 0
    assert spend.replies == 11 and spend.unpriced_models == ("unpriced-model",)
    per_reply = [
        selectors.reply_cost(message=m) for m in Message.objects.filter(conversation__lead=lead, role="agent")
    ]
    assert sum(c.tokens for c in per_reply) == tokens
    assert sum(c.usd for c in per_reply if c.usd is not None) == usd
    # The pages sum the rows they already loaded, to the same figure.
    assert selectors.lead_spend_of(messages=Message.objects.filter(conversation__lead=lead)) == spend


def _page_queries(client, url) -> int:
    with CaptureQueriesContext(connection) as seen:
        assert client.get(url).status_code == 200
    return len(seen.captured_queries)


def test_the_lead_page_shows_the_total_and_each_replys_cost_with_a_pinned_query_count(client, manager):
    client.force_login(manager)
    lead = LeadFactory()
    _conversation_with_replies(lead, 3)
    url = reverse("dashboard:lead_detail", args=[lead.pk])
    few = _page_queries(client, url)
    _conversation_with_replies(lead, 12)
    assert _page_queries(client, url) == few  # does not grow with the replies shown

    html = client.get(url).content.decode()
    tokens, usd = _sql_cost(lead.pk)
    assert f"{tokens:,} tokens · ${usd:.4f}" in html
    reply = Message.objects.filter(conversation__lead=lead, model="gpt-4o-mini").first()
    cost = selectors.reply_cost(message=reply)
    assert f"{cost.tokens:,} tokens · ${cost.usd:.4f}" in html
    assert f"{reply.prompt_tokens:,} input + {reply.completion_tokens:,} output tokens, gpt-4o-mini" in html


def test_the_inbox_conversation_shows_the_total_and_each_replys_cost(client, operator):
    client.force_login(operator)
    lead = LeadFactory()
    _conversation_with_replies(lead, 4)
    html = client.get(reverse("dashboard:inbox_conversation", args=[lead.pk])).content.decode()
    tokens, usd = _sql_cost(lead.pk)
    assert f"{tokens} tokens · ${usd:.4f}" in html
    assert html.count('data-testid="reply-cost"') == 4


# --- The month ---------------------------------------------


def _at(day: date, hour: int = 12) -> datetime:
    return timezone.make_aware(datetime.combine(day, datetime.min.time()) + timedelta(hours=hour))


def test_the_month_adds_the_agent_and_each_kind_of_run_apart_in_two_queries(django_assert_num_queries):
    today = date(2026, 12, 20)
    reply = AgentMessageFactory(model="gpt-4o-mini", prompt_tokens=1_000_000, completion_tokens=0)  # $0.15
    Message.objects.filter(pk=reply.pk).update(created_at=_at(date(2026, 12, 3)))
    older = AgentMessageFactory(model="gpt-4o-mini", prompt_tokens=5_000_000, completion_tokens=0)
    Message.objects.filter(pk=older.pk).update(created_at=_at(date(2026, 11, 30)))  # last month
    SpendDay.objects.create(day=date(2026, 12, 3), purpose="evaluation", prompt_tokens=10, usd_micros=250_000)
    SpendDay.objects.create(day=date(2026, 12, 5), purpose="rehearsal", prompt_tokens=20, usd_micros=500_000)
    SpendDay.objects.create(day=date(2026, 12, 6), purpose="scoring", prompt_tokens=30, usd_micros=1_000_000)

    with django_assert_num_queries(2):
        month = selectors.spend_month(today=today)

    totals = {t.purpose: t for t in month.totals}
    assert totals["agent"].usd == Decimal("0.15") and totals["agent"].tokens == 1_000_000
    assert (totals["evaluation"].usd, totals["rehearsal"].usd, totals["scoring"].usd) == (
        Decimal("0.25"),
        Decimal("0.5"),
        Decimal("1"),
    )
    assert month.total_usd == Decimal("1.90")
    assert len(month.days) == 31 and month.days[2].total == Decimal("0.40")
    assert month.days[-1].cumulative == Decimal("1.90")


@pytest.mark.parametrize("url_suffix", ["", "?month=2026-11"])
def test_the_spend_page_is_for_managers(client, manager, operator, url_suffix):
    url = reverse("dashboard:spend") + url_suffix
    client.force_login(operator)
    assert client.get(url).status_code == 403
    assert "/dashboard/spend/" not in client.get(reverse("dashboard:home")).content.decode()
    client.force_login(manager)
    response = client.get(url)
    assert response.status_code == 200
    html = response.content.decode()
    assert 'data-testid="budget-line"' in html and "AGENT_DAILY_USD_CAP" in html
    assert 'href="/dashboard/spend/"' in html  # in the navigation


def test_a_bad_month_is_404(client, manager):
    client.force_login(manager)
    assert client.get(reverse("dashboard:spend") + "?month=nope").status_code == 404


# --- The budget alert ---------------------------------------------


def _spend(day: date, usd: Decimal) -> None:
    SpendDay.objects.create(day=day, purpose="evaluation", usd_micros=int(usd * 1_000_000), prompt_tokens=1)


def test_the_budget_alert_fires_once_per_threshold_per_month(
    manager, operator, settings, django_capture_on_commit_callbacks
):
    settings.SPEND_ALERT_EMAILS = ["owner@example.com"]
    december = date(2026, 12, 10)
    _spend(date(2026, 12, 1), Decimal("7.99"))
    assert services.spend_budget_alert_check(today=december) == []

    _spend(date(2026, 12, 2), Decimal("0.01"))  # 8.00 of 10: 80 %
    with django_capture_on_commit_callbacks(execute=True):
        assert services.spend_budget_alert_check(today=december) == [80]
        assert services.spend_budget_alert_check(today=december) == []  # idempotent
        _spend(date(2026, 12, 3), Decimal("5"))  # 13.00: 100 % crossed
        assert services.spend_budget_alert_check(today=december) == [100]
        assert services.spend_budget_alert_check(today=december) == []

    notes = Notification.objects.filter(recipient=manager, verb__startswith="spend.budget_").order_by("id")
    assert [n.verb for n in notes] == ["spend.budget_80", "spend.budget_100"]
    assert "80% of the $10.00 budget" in notes[0].message
    assert not Notification.objects.filter(recipient=operator).exists()  # managers only
    assert [m.subject for m in mail.outbox] == [
        "[DM Sales Agent] 80% of the monthly model budget",
        "[DM Sales Agent] 100% of the monthly model budget",
    ]
    assert BudgetAlert.objects.count() == 2

    # A new month starts over: January's spend alerts again.
    _spend(date(2027, 1, 4), Decimal("9"))
    assert services.spend_budget_alert_check(today=date(2027, 1, 5)) == [80]


def test_both_thresholds_crossed_at_once_alert_both_and_a_zero_budget_never_alerts(manager, settings):
    _spend(date(2026, 12, 1), Decimal("12"))
    assert services.spend_budget_alert_check(today=date(2026, 12, 9)) == [80, 100]
    settings.SPEND_MONTHLY_BUDGET_USD = 0
    _spend(date(2027, 1, 1), Decimal("12"))
    assert services.spend_budget_alert_check(today=date(2027, 1, 9)) == []
    assert mail.outbox == []  # no SPEND_ALERT_EMAILS: notifications only


def test_the_beat_task_runs_the_check(manager):
    from agent.tasks import budget_alert

    _spend(timezone.localdate(), Decimal("20"))
    assert budget_alert.apply().get() == [80, 100]


# --- Runs refused over their cap ---------------------------------------------


def test_a_rehearsal_over_its_cap_is_refused_with_409(api, manager, prompt_version, settings):
    settings.REHEARSAL_DAILY_USD_CAP = 0.5
    _spend_rehearsal = SpendDay.objects.create(
        day=timezone.localdate(), purpose="rehearsal", prompt_tokens=9, usd_micros=500_000
    )
    response = api(manager).post(
        reverse("api:prompt_version_rehearse", args=[prompt_version.pk]), {"against": None}, format="json"
    )
    assert response.status_code == 409
    assert "REHEARSAL_DAILY_USD_CAP" in response.json()["budget"][0]
    assert _spend_rehearsal.purpose == "rehearsal"
    with pytest.raises(budget.BudgetExceeded):
        budget.budget_check(purpose=budget.Purpose.REHEARSAL)


# --- Scoring (agent/scoring) counts apart and stops at its money cap --------------------------------------


def test_scoring_records_its_judge_calls_as_scoring_spend_and_stops_at_its_money_cap(fake_openai, settings):
    from agent.scoring import services as scoring
    from tests.scoring.test_scoring import idle_conversation, judge

    settings.SCORING_IDLE_HOURS = 12.0
    settings.SCORING_SAMPLE_RATE = 1.0
    settings.SCORING_REVIEW_PASSING_RATE = 0.0
    settings.SCORING_RUBRIC = '[{"kind": "judged", "name": "Polite", "params": {"rubric": "Polite."}}]'
    settings.AGENT_MODEL_PRICES = {"fake-gpt": (Decimal(1), Decimal(2))}
    idle_conversation()
    judge(fake_openai, passed=True)

    assert scoring.scoring_run_due()["scored"] == 1
    day = SpendDay.objects.get(purpose="scoring", day=timezone.localdate())
    assert (day.prompt_tokens, day.completion_tokens, day.calls) == (300, 20, 1)
    assert day.usd_micros == 300 * 1 + 20 * 2  # USD per million tokens: micro-USD per token

    settings.SCORING_DAILY_USD_CAP = 0.0003  # 300 micro-USD: already spent
    idle_conversation()
    assert scoring.scoring_run_due() == {"scored": 0, "sampled_out": 0, "over_budget": 1}
