import datetime as dt

import pytest
from django.db import connection

from prompts.selectors import wilson_interval
from tests.factories import UserFactory
from tests.training.insights.conftest import END, START, at
from training.insights.selectors import InsightsFilter, training_insights
from training.models import ExampleStatus, ExampleType

pytestmark = pytest.mark.django_db

RANGE = InsightsFilter(start=START, end=END)


def test_totals_by_status_and_type_and_the_approval_rate(make_example):
    for kind in (ExampleType.GOOD, ExampleType.BAD, ExampleType.CORRECTION):
        make_example(created=at(2), status=ExampleStatus.APPROVED, example_type=kind)
    make_example(created=at(3), status=ExampleStatus.REJECTED, example_type=ExampleType.BAD)
    make_example(created=at(4), status=ExampleStatus.PENDING)
    make_example(created=at(20), status=ExampleStatus.REJECTED)  # outside the range

    examples = training_insights(f=RANGE)["examples"]

    assert examples["total"] == 5
    assert examples["by_status"] == {"pending": 1, "approved": 3, "rejected": 1}
    assert examples["by_type"] == {"good": 2, "bad": 2, "correction": 1}
    assert examples["by_status_and_type"]["rejected"] == {"good": 0, "bad": 1, "correction": 0}
    assert examples["decided"] == 4
    assert examples["approval_rate"] == 0.75


def test_approval_rate_is_none_without_decisions(make_example):
    make_example(created=at(2))
    assert training_insights(f=RANGE)["examples"]["approval_rate"] is None


@pytest.mark.parametrize(
    ("waits_in_hours", "median_hours"),
    [([1, 2, 4], 2), ([1, 2, 4, 10], 3), ([5], 5)],
)
def test_median_time_to_review(make_example, waits_in_hours, median_hours):
    for i, hours in enumerate(waits_in_hours):
        created = at(2 + i)
        make_example(
            created=created, status=ExampleStatus.APPROVED, decided=created + dt.timedelta(hours=hours)
        )
    # Decided outside the range: not part of the median.
    make_example(created=at(28, month=2), status=ExampleStatus.APPROVED, decided=at(28, 20, month=2))

    review = training_insights(f=RANGE)["review_time"]

    assert review["decided"] == len(waits_in_hours)
    assert review["median_seconds"] == pytest.approx(median_hours * 3600)


def test_median_time_to_review_with_no_decisions(make_example):
    make_example(created=at(2))
    assert training_insights(f=RANGE)["review_time"] == {"decided": 0, "median_seconds": None}


def test_submissions_and_decisions_per_day_fill_every_day(make_example):
    make_example(created=at(1, 0, 0), example_type=ExampleType.GOOD)
    make_example(created=at(1, 23, 59), example_type=ExampleType.BAD)
    make_example(
        created=at(2), example_type=ExampleType.CORRECTION, status=ExampleStatus.APPROVED, decided=at(4, 9)
    )
    make_example(created=at(3), status=ExampleStatus.REJECTED, decided=at(4, 18))
    make_example(created=at(10, 23, 59), status=ExampleStatus.APPROVED, decided=at(11, 1))  # decided after
    make_example(created=at(11, 0, 0))  # the day after the range

    insights = training_insights(f=RANGE)
    submitted = {d["day"]: d for d in insights["submissions_per_day"]}
    decided = {d["day"]: d for d in insights["decisions_per_day"]}

    assert list(submitted) == [f"2026-03-{d:02d}" for d in range(1, 11)]
    assert submitted["2026-03-01"] == {"day": "2026-03-01", "total": 2, "good": 1, "bad": 1, "correction": 0}
    assert submitted["2026-03-02"]["correction"] == 1
    assert submitted["2026-03-05"]["total"] == 0
    assert submitted["2026-03-10"]["total"] == 1
    assert sum(d["total"] for d in submitted.values()) == 5
    assert decided["2026-03-04"] == {"day": "2026-03-04", "approved": 1, "rejected": 1}
    assert sum(d["approved"] + d["rejected"] for d in decided.values()) == 2


def test_top_submitters_and_reviewers_by_display_name(make_example):
    ada = UserFactory(username="ada", first_name="Ada", last_name="Lovelace")
    bob = UserFactory(username="bob", first_name="", last_name="")
    manager = UserFactory(username="mgr", first_name="Grace", last_name="Hopper")
    for _ in range(3):
        make_example(created=at(2), submitted_by=ada, status=ExampleStatus.APPROVED, decided_by=manager)
    make_example(created=at(2), submitted_by=ada, status=ExampleStatus.REJECTED, decided_by=manager)
    make_example(created=at(3), submitted_by=bob, status=ExampleStatus.APPROVED, decided_by=ada)
    make_example(created=at(3), submitted_by=bob)
    make_example(created=at(3))  # no submitter (the old system's rows): left out

    insights = training_insights(f=RANGE)

    assert insights["top_submitters"] == [
        {"user_id": ada.pk, "name": "Ada Lovelace", "submitted": 4, "approved": 3, "rejected": 1},
        {"user_id": bob.pk, "name": "bob", "submitted": 2, "approved": 1, "rejected": 0},
    ]
    assert insights["top_reviewers"] == [
        {"user_id": manager.pk, "name": "Grace Hopper", "reviewed": 4, "approved": 3, "rejected": 1},
        {"user_id": ada.pk, "name": "Ada Lovelace", "reviewed": 1, "approved": 1, "rejected": 0},
    ]


def test_most_frequent_feedback_and_most_flagged_replies(make_example, make_reply, versions):
    # One example per agent reply (training_one_example_per_reply): a reply is "flagged" once, and the
    # replies that were flagged most are those whose text was flagged on most messages.
    v1, v2 = versions
    pushy = [make_reply(version=v1, text="BUY NOW!!!") for _ in range(3)]
    other = make_reply(version=v2, text="Plans start at 49.")
    good = make_reply(version=v2, text="Happy to help.")
    make_example(created=at(2), example_type=ExampleType.BAD, feedback="Too pushy", message=pushy[0])
    make_example(created=at(3), example_type=ExampleType.BAD, feedback="  too PUSHY ", message=pushy[1])
    make_example(created=at(3), example_type=ExampleType.CORRECTION, feedback="Too pushy", message=pushy[2])
    make_example(created=at(4), example_type=ExampleType.BAD, feedback="Wrong price", message=other)
    make_example(created=at(4), example_type=ExampleType.GOOD, feedback="Too pushy", message=good)  # good

    insights = training_insights(f=RANGE)

    assert insights["top_feedback"] == [
        {"phrase": "too pushy", "count": 3, "bad": 2, "correction": 1},
        {"phrase": "wrong price", "count": 1, "bad": 1, "correction": 0},
    ]
    flagged = insights["top_flagged_replies"]
    assert {row["message_id"] for row in flagged} == {m.pk for m in pushy} | {other.pk}
    assert all(row["count"] == 1 for row in flagged)
    assert {row["text"] for row in flagged} == {"BUY NOW!!!", "Plans start at 49."}
    assert {row["prompt_version"] for row in flagged if row["message_id"] == other.pk} == {2}


def test_results_per_prompt_version_with_the_wilson_interval(make_lead, versions):
    v1, v2 = versions
    for i in range(10):
        make_lead(created=at(2), version=v1, qualified=i < 3)
    for i in range(4):
        make_lead(created=at(5), version=v2, qualified=i < 2)
    make_lead(created=at(20), version=v2, qualified=True)  # outside the range

    rows = training_insights(f=RANGE)["prompt_versions"]

    low, high = wilson_interval(successes=3, trials=10)
    assert rows[0] == {
        "prompt_version_id": v1.pk,
        "version": 1,
        "conversations": 10,
        "qualified": 3,
        "success_rate": 0.3,
        "success_rate_low": pytest.approx(low),
        "success_rate_high": pytest.approx(high),
    }
    assert 0.1 < low < 0.3 < high < 0.61
    assert (rows[1]["version"], rows[1]["conversations"], rows[1]["qualified"]) == (2, 4, 2)


def test_lead_funnel_counts_leads_that_arrived_in_the_range(make_lead):
    for status, n in (
        ("new", 4),
        ("engaged", 3),
        ("qualified", 2),
        ("booked", 2),
        ("converted", 1),
        ("lost", 2),
    ):
        for _ in range(n):
            make_lead(created=at(3), status=status)
    make_lead(created=at(12), status="converted")

    funnel = training_insights(f=RANGE)["lead_funnel"]

    assert [(s["stage"], s["count"]) for s in funnel] == [
        ("new", 4),
        ("engaged", 3),
        ("qualified", 2),
        ("booked", 2),  # booked leads were left out of the lead funnel before
        ("converted", 1),
        ("lost", 2),
    ]


def test_handoffs_by_reason(make_lead, make_handoff):
    lead = make_lead(created=at(1))
    for reason in ["Asked for a human", "asked for a human ", "Refund request", "Asked for a human"]:
        make_handoff(lead=lead, created=at(4), reason=reason)
    make_handoff(lead=lead, created=at(15), reason="Refund request")  # outside the range
    make_handoff(lead=lead, created=at(5), reason="Window closed", verb="agent.needs_human")
    make_handoff(lead=lead, created=at(5), reason="Operator paused", verb="lead.bot_paused")  # not a handoff

    handoffs = training_insights(f=RANGE)["handoffs"]

    assert handoffs == {
        "total": 5,
        "by_reason": [
            {"reason": "asked for a human", "count": 3},
            {"reason": "refund request", "count": 1},
            {"reason": "window closed", "count": 1},
        ],
    }


def test_prompt_version_filter_narrows_every_figure(
    make_example, make_reply, make_lead, make_handoff, versions
):
    v1, v2 = versions
    reply1, reply2 = make_reply(version=v1), make_reply(version=v2)
    make_example(created=at(2), status=ExampleStatus.APPROVED, example_type=ExampleType.BAD, message=reply1)
    make_example(created=at(2), status=ExampleStatus.REJECTED, example_type=ExampleType.BAD, message=reply2)
    make_example(created=at(2), status=ExampleStatus.REJECTED)  # typed by hand: belongs to no version
    lead1 = make_lead(created=at(3), status="qualified", version=v1, qualified=True)
    lead2 = make_lead(created=at(3), status="lost", version=v2)
    make_handoff(lead=lead1, created=at(4), reason="Refund request")
    make_handoff(lead=lead2, created=at(4), reason="Wants a call")

    everything = training_insights(f=RANGE)
    only_v1 = training_insights(f=InsightsFilter(start=START, end=END, prompt_version_id=v1.pk))

    assert everything["examples"]["total"] == 3
    assert only_v1["examples"]["by_status"] == {"pending": 0, "approved": 1, "rejected": 0}
    assert only_v1["examples"]["approval_rate"] == 1.0
    assert [r["message_id"] for r in only_v1["top_flagged_replies"]] == [reply1.pk]
    assert [v["version"] for v in everything["prompt_versions"]] == [1, 2]
    assert [v["version"] for v in only_v1["prompt_versions"]] == [1]
    assert {s["stage"]: s["count"] for s in only_v1["lead_funnel"]}["lost"] == 0
    assert {s["stage"]: s["count"] for s in only_v1["lead_funnel"]}["qualified"] == 1
    assert only_v1["handoffs"] == {"total": 1, "by_reason": [{"reason": "refund request", "count": 1}]}
    assert only_v1["range"] == {"start": "2026-03-01", "end": "2026-03-10", "prompt_version": v1.pk}


def build(scale, *, make_example, make_reply, make_lead, make_handoff, versions):
    v1, v2 = versions
    people = [UserFactory() for _ in range(scale)]
    for i in range(scale * 3):
        reply = make_reply(version=v1 if i % 2 else v2, text=f"Answer {i}")
        make_example(
            created=at(1 + i % 9),
            status=[ExampleStatus.APPROVED, ExampleStatus.REJECTED, ExampleStatus.PENDING][i % 3],
            example_type=[ExampleType.GOOD, ExampleType.BAD, ExampleType.CORRECTION][i % 3],
            submitted_by=people[i % scale],
            decided_by=people[(i + 1) % scale] if i % 3 != 2 else None,
            feedback=f"Feedback {i % 4}",
            message=reply,
        )
        lead = make_lead(
            created=at(1 + i % 9), status="engaged", version=v1 if i % 2 else v2, qualified=i % 4 == 0
        )
        make_handoff(lead=lead, created=at(1 + i % 9), reason=f"Reason {i % 5}")


@pytest.mark.parametrize("prompt_filter", [False, True])
def test_query_count_does_not_grow_with_the_data(
    django_assert_num_queries, make_example, make_reply, make_lead, make_handoff, versions, prompt_filter
):
    helpers = {
        "make_example": make_example,
        "make_reply": make_reply,
        "make_lead": make_lead,
        "make_handoff": make_handoff,
        "versions": versions,
    }
    f = InsightsFilter(start=START, end=END, prompt_version_id=versions[0].pk if prompt_filter else None)
    # Eleven figures plus the funnel's median times (one query on PostgreSQL, one per step elsewhere); on
    # PostgreSQL without a version filter one more read asks whether the rollups cover the request (they
    # are not built here: test_rollups.py).
    postgresql = connection.vendor == "postgresql"
    expected = 11 + (1 if postgresql else 5) + (postgresql and not prompt_filter)
    build(2, **helpers)
    with django_assert_num_queries(expected):
        small = training_insights(f=f)
    build(12, **helpers)
    with django_assert_num_queries(expected):
        large = training_insights(f=f)
    assert large["examples"]["total"] > small["examples"]["total"] > 0
    assert len(large["top_flagged_replies"]) == 10
