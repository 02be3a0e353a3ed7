"""The insights rollups equal the base tables: built by the rebuild, then kept by the triggers through
inserts, decisions, edits, deletions and SET NULLs; compared figure by figure on random ranges (today
included), in other time zones, and with the query count pinned."""

import datetime as dt
import random

import pytest
from django.core.management import call_command
from django.db import connection
from django.test import override_settings
from django.utils import timezone

from leads.models import Message
from prompts.services import prompt_version_record_reply
from tests.factories import AgentMessageFactory, ConversationFactory, MessageFactory, UserFactory
from training.insights import selectors
from training.insights.models import InsightsExampleDay, InsightsRollupState
from training.insights.rollups import RollupsUnsupported, insights_rollup_rebuild
from training.insights.selectors import InsightsFilter, insights_rollups_cover, training_insights
from training.models import ExampleStatus, ExampleType, TrainingExample

pytestmark = pytest.mark.django_db

postgresql_only = pytest.mark.skipif(
    connection.vendor != "postgresql", reason="the rollups are kept by PostgreSQL triggers"
)

PHRASES = [
    "Too pushy",
    "too pushy ",
    "  TOO PUSHY",
    "Wrong price",
    "wrong price",
    "Missed the question",
    "ok",
]


def _raw(f: InsightsFilter, monkeypatch) -> dict:
    with monkeypatch.context() as m:
        m.setattr(selectors, "insights_rollups_cover", lambda **_: False)
        return training_insights(f=f)


def _random_data(
    rng: random.Random, *, today: dt.date, days: int = 40, n: int = 180
) -> list[TrainingExample]:
    """Examples over the `days` before today (and today), at random instants incl. around midnight."""
    users = [UserFactory() for _ in range(4)]
    conversation = ConversationFactory()
    MessageFactory(conversation=conversation, text="Lead question")
    examples = []
    tz = timezone.get_current_timezone()
    for _ in range(n):
        day = today - dt.timedelta(days=rng.randint(0, days))
        # Near midnight half the time: the day boundary is where a wrong time zone would show.
        minute = rng.choice([0, 1, 59, 23 * 60 + 59, 23 * 60 + 58, rng.randint(0, 24 * 60 - 1)])
        created = dt.datetime.combine(day, dt.time(minute // 60, minute % 60, rng.randint(0, 59)), tzinfo=tz)
        created = min(created, timezone.now())
        kind = rng.choice(ExampleType.values)
        status = rng.choice(ExampleStatus.values)
        decided = None
        if status != ExampleStatus.PENDING:
            decided = min(
                created + dt.timedelta(minutes=rng.randint(1, 60 * 60), seconds=rng.random()), timezone.now()
            )
        message = None
        if kind != ExampleType.GOOD and rng.random() < 0.8:  # one example per flagged reply
            message = AgentMessageFactory(conversation=conversation, prompt_version=None, text="Reply")
        example = TrainingExample.objects.create(
            conversation=message.conversation if message else None,
            message=message,
            submitted_by=rng.choice(users + [None]),
            user_message="Hi",
            ai_response="Hello",
            expected_response="Better" if kind == ExampleType.CORRECTION else "",
            feedback=rng.choice(PHRASES),
            example_type=kind,
        )
        TrainingExample.objects.filter(pk=example.pk).update(
            created_at=created,
            status=status,
            decided_at=decided,
            decided_by=rng.choice(users) if decided else None,
        )
        examples.append(example)
    return examples


def _churn(rng: random.Random, examples: list[TrainingExample]) -> None:
    """Decisions, reversals, edits, deletions and SET NULLs after the rollups exist: the triggers' work."""
    for example in rng.sample(examples, 40):
        example.refresh_from_db()
        if example.status == ExampleStatus.PENDING:
            example.status = ExampleStatus.APPROVED
            example.decided_at = timezone.now()
            example.save(update_fields=["status", "decided_at", "updated_at"])
        else:
            TrainingExample.objects.filter(pk=example.pk).update(
                status=ExampleStatus.PENDING, decided_at=None, decided_by=None
            )
    for example in rng.sample(examples, 10):
        TrainingExample.objects.filter(pk=example.pk).update(feedback=rng.choice(PHRASES) + " again")
    for example in rng.sample(examples, 10):
        TrainingExample.objects.filter(pk=example.pk).delete()
    # A flagged reply deleted (its examples' message becomes NULL) and a submitter deleted (SET NULL).
    flagged = (
        TrainingExample.objects.filter(message__isnull=False).values_list("message_id", flat=True).first()
    )
    Message.objects.filter(pk=flagged).delete()
    submitter = TrainingExample.objects.filter(submitted_by__isnull=False).first().submitted_by
    submitter.delete()


def _random_ranges(rng: random.Random, today: dt.date, count: int = 25) -> list[InsightsFilter]:
    ranges = [
        InsightsFilter(start=today, end=today),
        InsightsFilter(start=today - dt.timedelta(days=29), end=today),
        InsightsFilter(start=today - dt.timedelta(days=60), end=today + dt.timedelta(days=1)),
    ]
    for _ in range(count):
        start = today - dt.timedelta(days=rng.randint(0, 45))
        ranges.append(InsightsFilter(start=start, end=start + dt.timedelta(days=rng.randint(0, 20))))
    return ranges


@postgresql_only
@pytest.mark.parametrize("time_zone", ["UTC", "America/Los_Angeles", "Asia/Kathmandu"])
@pytest.mark.parametrize("built", ["before the data", "after the data"])
def test_rollups_equal_the_base_tables_on_random_ranges(monkeypatch, time_zone, built):
    rng = random.Random(f"{time_zone}-{built}")
    with override_settings(TIME_ZONE=time_zone), timezone.override(time_zone):
        today = timezone.localdate()
        if built == "before the data":
            insights_rollup_rebuild()
        examples = _random_data(rng, today=today)
        _churn(rng, examples)
        if built == "after the data":
            insights_rollup_rebuild()
        compared = 0
        for f in _random_ranges(rng, today):
            assert insights_rollups_cover(f=f)
            assert training_insights(f=f) == _raw(f, monkeypatch), f
            compared += 1
        assert compared >= 25
        # Not vacuous: the figures the rollups serve are there.
        whole = training_insights(f=InsightsFilter(start=today - dt.timedelta(days=45), end=today))
        assert whole["examples"]["total"] > 140
        assert whole["top_feedback"] and whole["top_flagged_replies"] and whole["top_submitters"]
        assert whole["review_time"]["decided"] > 0


@postgresql_only
def test_a_request_in_another_time_zone_reads_the_base_tables(monkeypatch):
    rng = random.Random(7)
    insights_rollup_rebuild()  # days in UTC
    today = timezone.localdate()
    _random_data(rng, today=today, n=80)
    with timezone.override("Asia/Kolkata"):  # +05:30: UTC days do not line up with its days
        f = InsightsFilter(start=today - dt.timedelta(days=10), end=today)
        assert not insights_rollups_cover(f=f)
        assert training_insights(f=f) == _raw(f, monkeypatch)


@postgresql_only
def test_a_version_filter_reads_the_base_tables(versions):
    insights_rollup_rebuild()
    today = timezone.localdate()
    assert not insights_rollups_cover(
        f=InsightsFilter(start=today, end=today, prompt_version_id=versions[0].pk)
    )


@postgresql_only
def test_triggers_keep_counts_through_each_kind_of_write():
    insights_rollup_rebuild()
    now = timezone.now()
    example = TrainingExample.objects.create(
        user_message="Hi", ai_response="Hello", feedback="Fine", example_type=ExampleType.GOOD
    )
    day = timezone.localdate(now)
    rows = InsightsExampleDay.objects.filter(day=day)
    assert list(rows.values_list("status", "n")) == [(ExampleStatus.PENDING, 1)]
    TrainingExample.objects.filter(pk=example.pk).update(status=ExampleStatus.APPROVED, decided_at=now)
    assert dict(rows.filter(n__gt=0).values_list("status", "n")) == {ExampleStatus.APPROVED: 1}
    example.delete()
    assert not rows.filter(n__gt=0).exists()


@postgresql_only
def test_rebuild_command_reports_progress_and_records_the_time_zone(capsys):
    TrainingExample.objects.create(
        user_message="Hi", ai_response="Hello", feedback="Bad tone", example_type=ExampleType.BAD
    )
    call_command("insights_rollup_rebuild")
    out = capsys.readouterr().out
    for table in ("insights_example_days", "insights_decision_days", "insights_feedback_days"):
        assert table in out
    assert "rollup rows written" in out
    assert InsightsRollupState.objects.get(pk=1).time_zone == timezone.get_default_timezone_name()


@pytest.mark.skipif(connection.vendor == "postgresql", reason="the refusal is for other databases")
def test_rebuild_refuses_other_databases():
    with pytest.raises(RollupsUnsupported):
        insights_rollup_rebuild()


@postgresql_only
@pytest.mark.parametrize("rows", [2, 12])
def test_query_count_with_rollups_is_pinned(
    django_assert_num_queries, make_example, make_reply, versions, rows
):
    insights_rollup_rebuild()
    today = timezone.localdate()
    now = timezone.now()
    for i in range(rows):
        reply = make_reply(version=versions[i % 2])
        prompt_version_record_reply(message_id=reply.pk)  # the fact row the funnel reads
        make_example(created=now, status=ExampleStatus.APPROVED, example_type=ExampleType.BAD, message=reply)
    f = InsightsFilter(start=today - dt.timedelta(days=29), end=today)
    # state, per day, decisions, median, submitters, reviewers, feedback, flagged (2) + their texts,
    # funnel counts + times, leads by status, handoffs
    with django_assert_num_queries(14):
        training_insights(f=f)
