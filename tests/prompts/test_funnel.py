"""The funnel per prompt version: steps credited by the qualification rule, and on a fixture of 1,000
conversations every per-version figure (rates, intervals, median times, cost per outcome) equal to a direct
SQL check written from the base tables (activities, messages, conversations)."""

import datetime as dt
import random
from decimal import Decimal

import pytest
from django.db import connection
from django.test import override_settings
from django.utils import timezone

from leads.models import Activity, Conversation, Lead, LeadStatus, Message, MessageRole
from leads.services import lead_set_status
from prompts.funnel.selectors import funnel_for_versions, funnel_per_version
from prompts.funnel.services import funnel_reconcile, funnel_step_record
from prompts.models import FunnelCursor, PromptVersionConversation
from prompts.selectors import WILSON_Z_95
from prompts.services import prompt_version_record_reply
from tests.factories import (
    AgentMessageFactory,
    ConversationFactory,
    LeadFactory,
    MessageFactory,
    PromptVersionFactory,
)

pytestmark = pytest.mark.django_db

PRICES = {"gpt-4o-mini": (Decimal("0.15"), Decimal("0.60")), "gpt-5-mini": (Decimal("0.25"), Decimal("2.00"))}


def _reply(*, conversation, version, at: dt.datetime) -> Message:
    asked = MessageFactory(conversation=conversation, text="Question")
    reply = AgentMessageFactory(conversation=conversation, in_reply_to=asked, prompt_version=version)
    Message.objects.filter(pk__in=[asked.pk, reply.pk]).update(created_at=at)
    prompt_version_record_reply(message_id=reply.pk)
    return reply


def _status(lead: Lead, status: str, at: dt.datetime) -> None:
    lead_set_status(lead=lead, status=status, source="person")
    Activity.objects.filter(pk=Activity.objects.filter(lead=lead).latest("id").pk).update(created_at=at)


def _fact(version, conversation) -> PromptVersionConversation:
    return PromptVersionConversation.objects.get(prompt_version=version, conversation=conversation)


def test_a_step_is_credited_to_the_version_whose_reply_came_just_before():
    v1, v2 = PromptVersionFactory(version=1), PromptVersionFactory(version=2)
    conversation = ConversationFactory()
    lead = conversation.lead
    t0 = timezone.now() - dt.timedelta(hours=5)
    _reply(conversation=conversation, version=v1, at=t0)
    _reply(conversation=conversation, version=v2, at=t0 + dt.timedelta(hours=1))
    _reply(conversation=conversation, version=v1, at=t0 + dt.timedelta(hours=3))

    assert (
        funnel_step_record(lead_id=lead.pk, status=LeadStatus.BOOKED, at=t0 + dt.timedelta(hours=2)) == v2.pk
    )

    booked = _fact(v2, conversation)
    # Booked straight away: engaged and qualified are reached at the same moment, by the same version.
    assert booked.booked_at == booked.qualified_at == booked.engaged_at == t0 + dt.timedelta(hours=2)
    assert _fact(v1, conversation).booked_at is None


def test_each_step_is_credited_once_per_conversation_and_lost_stands_alone():
    v1, v2 = PromptVersionFactory(version=1), PromptVersionFactory(version=2)
    conversation = ConversationFactory()
    t0 = timezone.now() - dt.timedelta(hours=5)
    _reply(conversation=conversation, version=v1, at=t0)
    funnel_step_record(
        lead_id=conversation.lead_id, status=LeadStatus.QUALIFIED, at=t0 + dt.timedelta(minutes=5)
    )
    _reply(conversation=conversation, version=v2, at=t0 + dt.timedelta(hours=1))
    funnel_step_record(
        lead_id=conversation.lead_id, status=LeadStatus.QUALIFIED, at=t0 + dt.timedelta(hours=2)
    )
    funnel_step_record(lead_id=conversation.lead_id, status=LeadStatus.LOST, at=t0 + dt.timedelta(hours=2))

    first, second = _fact(v1, conversation), _fact(v2, conversation)
    assert first.qualified_at == t0 + dt.timedelta(minutes=5) and second.qualified_at is None
    assert second.lost_at == t0 + dt.timedelta(hours=2) and second.engaged_at is None
    assert first.lost_at is None


def test_no_reply_before_the_step_credits_nobody():
    conversation = ConversationFactory()
    t0 = timezone.now() - dt.timedelta(hours=5)
    _reply(conversation=conversation, version=PromptVersionFactory(version=1), at=t0)
    assert (
        funnel_step_record(lead_id=conversation.lead_id, status=LeadStatus.CONVERTED, at=t0 - dt.timedelta(1))
        is None
    )
    assert funnel_step_record(lead_id=conversation.lead_id, status=LeadStatus.NEW, at=t0) is None
    assert not PromptVersionConversation.objects.filter(won_at__isnull=False).exists()


def test_reconcile_follows_the_status_activities_with_a_cursor():
    version = PromptVersionFactory(version=1)
    conversation = ConversationFactory()
    t0 = timezone.now() - dt.timedelta(hours=5)
    _reply(conversation=conversation, version=version, at=t0)
    _status(conversation.lead, LeadStatus.BOOKED, t0 + dt.timedelta(hours=1))
    lead_set_status(lead=conversation.lead, status=LeadStatus.CONVERTED)  # just now: left for the next run

    assert funnel_reconcile() == 1
    fact = _fact(version, conversation)
    assert fact.booked_at == t0 + dt.timedelta(hours=1) and fact.won_at is None
    assert funnel_reconcile() == 0  # nothing new past the cursor yet
    Activity.objects.filter(lead=conversation.lead).update(created_at=t0 + dt.timedelta(hours=2))
    assert funnel_reconcile() == 1
    assert _fact(version, conversation).won_at == t0 + dt.timedelta(hours=2)
    assert FunnelCursor.objects.get(pk=1).last_activity_id == Activity.objects.latest("id").pk


# --- 1,000 conversations against a direct SQL check (PostgreSQL) -----------------------------------------

STEP_OF = {
    "engaged": ["engaged"],
    "qualified": ["engaged", "qualified"],
    "booked": ["engaged", "qualified", "booked"],
    "converted": ["engaged", "qualified", "booked", "won"],
    "lost": ["lost"],
}
# Per conversation and step, the first status change reaching the step after some version had replied,
# credited to the version of the last reply before it.
DIRECT_SQL = """
WITH reaching AS (
    SELECT a.id, a.lead_id, s.step, a.created_at AS at
    FROM activities a
    JOIN (VALUES ('engaged', 'engaged'), ('qualified', 'engaged'), ('qualified', 'qualified'),
                 ('booked', 'engaged'), ('booked', 'qualified'), ('booked', 'booked'),
                 ('converted', 'engaged'), ('converted', 'qualified'), ('converted', 'booked'),
                 ('converted', 'won'), ('lost', 'lost')) AS s(status, step) ON s.status = a.data ->> 'to'
    WHERE a.verb = 'lead.status_changed'
), with_reply AS (
    SELECT r.step, r.at, last.prompt_version_id, last.conversation_id,
           ROW_NUMBER() OVER (PARTITION BY last.conversation_id, r.step ORDER BY r.at, r.id) AS nth
    FROM reaching r
    JOIN LATERAL (
        SELECT m.prompt_version_id, m.conversation_id FROM messages m
        JOIN conversations c ON c.id = m.conversation_id
        WHERE c.lead_id = r.lead_id AND m.role = 'agent' AND m.prompt_version_id IS NOT NULL
          AND m.created_at <= r.at
        ORDER BY m.created_at DESC, m.id DESC LIMIT 1
    ) last ON TRUE
), credited AS (
    SELECT * FROM with_reply WHERE nth = 1
), answered AS (
    SELECT prompt_version_id, COUNT(DISTINCT conversation_id) AS n FROM messages
    WHERE role = 'agent' AND prompt_version_id IS NOT NULL GROUP BY 1
), steps AS (
    SELECT cr.prompt_version_id, cr.step, COUNT(*) AS k,
           percentile_cont(0.5) WITHIN GROUP (ORDER BY cr.at - c.started_at) AS median
    FROM credited cr JOIN conversations c ON c.id = cr.conversation_id GROUP BY 1, 2
)
SELECT a.prompt_version_id, a.n, all_steps.step, COALESCE(s.k, 0),
       EXTRACT(EPOCH FROM s.median)::float8,
       w.low, w.high
FROM answered a
CROSS JOIN (VALUES ('engaged'), ('qualified'), ('booked'), ('won'), ('lost')) AS all_steps(step)
LEFT JOIN steps s ON s.prompt_version_id = a.prompt_version_id AND s.step = all_steps.step
CROSS JOIN LATERAL (
    SELECT COALESCE(s.k, 0)::float8 / a.n AS p, %(z)s::float8 AS z, a.n::float8 AS n
) q
CROSS JOIN LATERAL (
    SELECT (q.p + q.z * q.z / (2 * q.n)) / (1 + q.z * q.z / q.n) AS centre,
           q.z * sqrt(q.p * (1 - q.p) / q.n + q.z * q.z / (4 * q.n * q.n)) / (1 + q.z * q.z / q.n) AS margin
) cm
CROSS JOIN LATERAL (
    SELECT GREATEST(0, cm.centre - cm.margin) AS low, LEAST(1, cm.centre + cm.margin) AS high
) w
"""
DIRECT_COST_SQL = """
SELECT m.prompt_version_id,
       SUM(m.prompt_tokens * p.given + m.completion_tokens * p.taken) / 1000000
FROM messages m JOIN (VALUES %s) AS p(model, given, taken) ON p.model = m.model
WHERE m.role = 'agent' AND m.prompt_version_id IS NOT NULL
GROUP BY 1
"""


@pytest.fixture
def thousand_conversations(db):
    """1,000 leads with one conversation each, answered by 1-3 replies of 3 versions on two priced models,
    then moved down the funnel (skipping steps, going back, getting lost) at random moments."""
    rng = random.Random(20)
    versions = [PromptVersionFactory(version=i) for i in (1, 2, 3)]
    now = timezone.now()
    leads = Lead.objects.bulk_create(
        [Lead(manychat_subscriber_id=f"funnel-{i}", status=LeadStatus.NEW) for i in range(1000)]
    )
    conversations = Conversation.objects.bulk_create([Conversation(lead=lead) for lead in leads])
    starts = {}
    messages = []
    for conversation in conversations:
        start = now - dt.timedelta(days=rng.randint(2, 40), seconds=rng.randint(0, 86_400))
        starts[conversation.pk] = start
        moment = start
        for _ in range(rng.randint(1, 3)):
            moment += dt.timedelta(seconds=rng.randint(30, 4 * 3600))
            messages.append(
                Message(
                    conversation=conversation,
                    role=MessageRole.AGENT,
                    text="Reply",
                    prompt_version=rng.choice(versions),
                    delivery_status="returned",
                    model=rng.choice(list(PRICES)),
                    prompt_tokens=rng.randint(50, 3000),
                    completion_tokens=rng.randint(10, 600),
                )
            )
            messages[-1].at = moment  # type: ignore[attr-defined]
    Message.objects.bulk_create(messages)
    for message in messages:
        message.created_at = message.at  # type: ignore[attr-defined]
    Message.objects.bulk_update(messages, ["created_at"], batch_size=500)
    Conversation.objects.bulk_update(
        [Conversation(pk=pk, started_at=start) for pk, start in starts.items()], ["started_at"]
    )
    # The fact rows, as the per-reply task writes them (per version and conversation: first, last reply).
    spans: dict[tuple[int, int], list[dt.datetime]] = {}
    for message in messages:
        key = (message.prompt_version_id, message.conversation_id)
        spans.setdefault(key, []).append(message.created_at)
    PromptVersionConversation.objects.bulk_create(
        [
            PromptVersionConversation(
                prompt_version_id=v, conversation_id=c, first_reply_at=min(ats), last_reply_at=max(ats)
            )
            for (v, c), ats in spans.items()
        ]
    )
    activities = []
    for conversation in conversations:
        moment = starts[conversation.pk]
        for status in rng.choice(
            [
                [],
                ["engaged"],
                ["qualified"],
                ["engaged", "qualified", "booked"],
                ["booked", "qualified", "booked", "converted"],
                ["converted"],
                ["qualified", "lost"],
                ["lost"],
                ["engaged", "qualified", "booked", "converted"],
            ]
        ):
            moment += dt.timedelta(seconds=rng.randint(0, 6 * 3600))
            activities.append(
                Activity(
                    lead_id=conversation.lead_id,
                    verb="lead.status_changed",
                    data={"to": status, "source": rng.choice(["agent", "person", "integration"])},
                )
            )
            activities[-1].at = min(moment, now - dt.timedelta(minutes=5))  # type: ignore[attr-defined]
    Activity.objects.bulk_create(activities)
    for activity in activities:
        activity.created_at = activity.at  # type: ignore[attr-defined]
    Activity.objects.bulk_update(activities, ["created_at"], batch_size=500)
    while funnel_reconcile(limit=1000):
        pass
    return versions


@pytest.mark.skipif(connection.vendor != "postgresql", reason="the direct SQL check is PostgreSQL SQL")
@pytest.mark.timeout(900)  # ~25,000 statements of crediting: minutes on a loaded 2-core machine
@override_settings(AGENT_MODEL_PRICES=PRICES)
def test_every_per_version_figure_matches_a_direct_sql_check(thousand_conversations):
    versions = thousand_conversations
    with connection.cursor() as cursor:
        cursor.execute(DIRECT_SQL, {"z": WILSON_Z_95})
        expected = {(row[0], row[2]): row for row in cursor.fetchall()}
        values = ", ".join(f"('{model}', {given}, {taken})" for model, (given, taken) in PRICES.items())
        cursor.execute(DIRECT_COST_SQL % values)  # noqa: S608 - literal prices from the test's own table
        costs = dict(cursor.fetchall())

    funnels = funnel_for_versions(version_ids=[v.pk for v in versions])
    checked = 0
    for version in versions:
        funnel = funnels[version.pk]
        assert funnel.cost_usd == costs[version.pk]
        for step in funnel.steps:
            _, conversations, _, count, median, low, high = expected[(version.pk, step.step)]
            assert funnel.conversations == conversations
            assert step.count == count
            assert step.rate == count / conversations
            assert step.interval == pytest.approx((low, high), rel=1e-12, abs=1e-15)
            if count:
                assert step.median_seconds == pytest.approx(median, abs=1e-6)
            else:
                assert step.median_seconds is None
            if step.step in funnel.cost_per:
                per = funnel.cost_per[step.step]
                assert (per is None) == (count == 0)
                if count:
                    assert abs(per - costs[version.pk] / count) < Decimal("1e-18")
            checked += 1
    assert checked == 15
    # Not vacuous: every step happened, for every version.
    assert all(s.count > 10 for f in funnels.values() for s in f.steps)
    # The insights form (a range) agrees with the all-time one when the range holds everything.
    ranged = {
        f.prompt_version_id: f for f in funnel_per_version(since=timezone.now() - dt.timedelta(days=60))
    }
    assert {pk: [s.count for s in f.steps] for pk, f in ranged.items()} == {
        pk: [s.count for s in f.steps] for pk, f in funnels.items()
    }


def test_query_counts_are_pinned(django_assert_num_queries):
    versions = [PromptVersionFactory(version=i) for i in (1, 2)]
    for i in range(6):
        conversation = ConversationFactory(lead=LeadFactory())
        _reply(conversation=conversation, version=versions[i % 2], at=timezone.now() - dt.timedelta(hours=3))
        funnel_step_record(lead_id=conversation.lead_id, status=LeadStatus.BOOKED, at=timezone.now())
    # Counts and median times (on SQLite the medians take one query per step).
    with django_assert_num_queries(2 if connection.vendor == "postgresql" else 6):
        funnel_per_version()
    with django_assert_num_queries(4 if connection.vendor == "postgresql" else 8):  # + numbers, costs
        funnel_for_versions(version_ids=[v.pk for v in versions])


@pytest.mark.parametrize(("role", "status"), [("viewer", 200), ("manager", 200), (None, 403)])
def test_funnel_api(make_user, role, status):
    from rest_framework.test import APIClient

    version = PromptVersionFactory(version=1)
    conversation = ConversationFactory()
    _reply(conversation=conversation, version=version, at=timezone.now() - dt.timedelta(hours=2))
    funnel_step_record(lead_id=conversation.lead_id, status=LeadStatus.CONVERTED, at=timezone.now())
    client = APIClient()
    if role is not None:
        client.force_authenticate(make_user(role))

    response = client.get(f"/api/prompt/versions/{version.pk}/funnel/")

    assert response.status_code == status, response.content
    if status == 200:
        body = response.json()
        assert body["conversations"] == 1
        assert [(s["step"], s["count"]) for s in body["steps"]] == [
            ("engaged", 1), ("qualified", 1), ("booked", 1), ("won", 1), ("lost", 0)
        ]  # fmt: skip
        assert body["steps"][3]["rate_low"] < 1 == body["steps"][3]["rate"]
        assert "just before the lead reached it" in body["attribution_rule"]
        assert client.get("/api/prompt/versions/999999/funnel/").status_code == 404
