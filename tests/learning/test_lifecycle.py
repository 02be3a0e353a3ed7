"""One lifecycle for an example (issue #18, item 2) and the review queue's reads (item 3)."""

import re
from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from leads.models import Activity
from tests.factories import TrainingExampleFactory, UserFactory
from training import services
from training.models import ExampleStatus, ExampleType, TrainingExample
from training.retrieval.selectors import training_examples_select
from training.review import services as review_services
from training.review.errors import ExampleAlreadyFlagged
from training.review.fields import DECIDED_AT, DECIDED_BY

pytestmark = pytest.mark.django_db

PRICE_QUESTION = "How much does the coaching program cost per month?"


def _approved(manager, **fields) -> TrainingExample:
    return TrainingExampleFactory(
        status=ExampleStatus.APPROVED, **{DECIDED_AT: timezone.now(), DECIDED_BY: manager}, **fields
    )


def _flag(client, conversation, reply, **fields):
    data = {
        "mode": "conversation",
        "conv-lead": conversation.lead_id,
        "conv-message_id": reply.pk,
        "conv-example_type": "bad",
        "conv-feedback": "Too pushy",
    }
    data.update({f"conv-{k}": v for k, v in fields.items()})
    return client.post(reverse("dashboard:training_submit"), data)


def test_flagging_the_same_reply_twice_gives_one_example_and_opens_the_first(
    client, operator, make_user, make_conversation, api
):
    conversation, replies = make_conversation(1)
    client.force_login(operator)
    assert _flag(client, conversation, replies[0]).status_code == 302
    first = TrainingExample.objects.get()

    # Another operator, through the page: sent to the first example instead of a second one.
    client.force_login(make_user("operator", username="operator2"))
    again = _flag(
        client, conversation, replies[0], **{"example_type": "correction", "expected_response": "Hi"}
    )
    assert again.status_code == 302 and again.url == reverse(
        "dashboard:training_example_detail", args=[first.pk]
    )
    # The lead page's "Submit as training" link opens it too.
    opened = client.get(f"/dashboard/training/submit/?lead={conversation.lead_id}&message={replies[0].pk}")
    assert opened.url == reverse("dashboard:training_example_detail", args=[first.pk])
    # Through the API: 409 naming the field and the example.
    response = api(operator).post(
        "/api/training/submit/",
        {
            "conversation_id": conversation.pk,
            "message_id": replies[0].pk,
            "example_type": "bad",
            "feedback": "x",
        },
        format="json",
    )
    assert response.status_code == 409
    assert f"#{first.pk}" in str(response.data["message_id"])
    # Through the service.
    with pytest.raises(ExampleAlreadyFlagged) as caught:
        services.training_example_submit_from_conversation(
            message=replies[0], submitter=operator, example_type="good", feedback="fine"
        )
    assert caught.value.example_id == first.pk
    assert TrainingExample.objects.count() == 1


def test_the_database_holds_one_example_per_reply(make_conversation):
    from django.db import IntegrityError, transaction

    conversation, replies = make_conversation(1)
    TrainingExampleFactory(conversation=conversation, message=replies[0])
    with pytest.raises(IntegrityError), transaction.atomic():
        TrainingExampleFactory(conversation=conversation, message=replies[0])


def test_a_conflicting_correction_is_shown_to_the_submitter_and_the_reviewer(client, operator, manager):
    approved = _approved(
        manager,
        user_message=PRICE_QUESTION,
        example_type=ExampleType.CORRECTION,
        ai_response="I am not sure.",
        expected_response="It is $300 a month, billed monthly, cancel any time.",
        feedback="Give the price.",
    )
    duplicate = _approved(manager, user_message="Where do I log in to the members area?")
    client.force_login(operator)
    response = client.post(
        reverse("dashboard:training_submit"),
        {
            "mode": "manual",
            "manual-user_message": "How much does the coaching program cost each month?",
            "manual-ai_response": "It is $300 a month.",
            "manual-example_type": "correction",
            "manual-feedback": "We only sell yearly plans now.",
            "manual-expected_response": "We only offer a yearly plan: $2,900 paid once.",
        },
        follow=True,
    )
    new = TrainingExample.objects.exclude(pk__in=[approved.pk, duplicate.pk]).get()
    assert response.redirect_chain[-1][0] == reverse("dashboard:training_example_detail", args=[new.pk])
    html = response.content.decode()
    assert re.search(r"contradicts? this one", html)
    assert f'Conflict</strong> with <a href="/dashboard/training/library/{approved.pk}/"' in html
    assert (
        new.metadata["similar"][0]["id"] == approved.pk and new.metadata["similar"][0]["kind"] == "conflict"
    )
    assert all(item["id"] != duplicate.pk for item in new.metadata["similar"])

    client.force_login(manager)
    queue = client.get(reverse("dashboard:training_review"))
    (card,) = queue.context["examples"]
    assert [s.example_id for s in card.conflicts] == [approved.pk]
    assert 'data-similar-kind="conflict"' in queue.content.decode()


def test_a_near_duplicate_is_not_a_conflict(operator, manager):
    approved = _approved(manager, user_message=PRICE_QUESTION, ai_response="It is $300 a month.")
    new = services.training_example_submit_manual(
        submitter=operator,
        user_message="How much does the coaching program cost per month??",
        ai_response="It is $300 a month!",
        example_type="good",
        feedback="Right price.",
    )
    assert [(s["id"], s["kind"]) for s in new.metadata["similar"]] == [(approved.pk, "duplicate")]


def test_reviewer_edits_the_expected_response_before_approving_and_the_edit_is_recorded(
    client, operator, manager
):
    example = TrainingExampleFactory(
        submitted_by=operator, example_type="correction", expected_response="Costs 300", user_message="Price?"
    )
    client.force_login(manager)
    client.post(
        reverse("dashboard:training_review"),
        {
            "ids": [example.pk],
            "single": "1",
            "action": "approve",
            "expected_response": "It is $300 a month; want the link to book a call?",
            "note": "Tightened",
        },
    )
    example.refresh_from_db()
    assert example.status == ExampleStatus.APPROVED
    assert example.expected_response == "It is $300 a month; want the link to book a call?"
    assert example.metadata["reviewer_edit"]["before"] == "Costs 300"
    edit = Activity.objects.get(verb="training.edited_on_review")
    assert edit.data == {
        "example_id": example.pk,
        "before": "Costs 300",
        "after": "It is $300 a month; want the link to book a call?",
    }
    page = client.get(reverse("dashboard:training_example_detail", args=[example.pk])).content.decode()
    assert (
        'data-testid="reviewer-edit"' in page
        and f"edited training example #{example.pk} while reviewing it" in page
    )


def test_editing_a_good_example_makes_it_a_correction(manager):
    example = TrainingExampleFactory(example_type="good", ai_response="Hello there")
    review_services.training_example_approve_edited(
        example=example, reviewer=manager, expected_response="Hi! What brings you here?"
    )
    example.refresh_from_db()
    assert (example.example_type, example.ai_response) == ("correction", "Hello there")


def test_operator_may_not_approve_with_an_edit(operator):
    from django.core.exceptions import PermissionDenied

    example = TrainingExampleFactory(example_type="correction", expected_response="x")
    with pytest.raises(PermissionDenied):
        review_services.training_example_approve_edited(
            example=example, reviewer=operator, expected_response="y"
        )
    example.refresh_from_db()
    assert (example.status, example.expected_response) == ("pending", "x")


def test_retiring_takes_an_example_out_of_the_agents_examples_at_once(client, manager):
    example = _approved(manager, user_message="Do you give refunds?")
    assert [i["id"] for i in training_examples_select(lead_message="refunds?", limit=5)] == [example.pk]
    client.force_login(manager)
    client.post(
        reverse("dashboard:training_example_detail", args=[example.pk]), {"action": "retire", "note": "Old"}
    )
    example.refresh_from_db()
    assert example.retired_at is not None and example.status == ExampleStatus.APPROVED
    assert training_examples_select(lead_message="refunds?", limit=5) == []
    client.post(reverse("dashboard:training_example_detail", args=[example.pk]), {"action": "restore"})
    assert [i["id"] for i in training_examples_select(lead_message="refunds?", limit=5)] == [example.pk]
    verbs = list(
        Activity.objects.filter(data__example_id=example.pk).order_by("id").values_list("verb", flat=True)
    )
    assert verbs == ["training.retired", "training.restored"]


def test_the_submitter_sees_why_an_example_was_rejected(client, operator, manager):
    example = TrainingExampleFactory(submitted_by=operator)
    services.training_example_reject(example=example, reviewer=manager, note="Duplicate of #12, see there")
    client.force_login(operator)
    page = client.get(reverse("dashboard:training_example_detail", args=[example.pk])).content.decode()
    assert "Why it was rejected" in page and "Duplicate of #12, see there" in page
    mine = client.get(reverse("dashboard:training_library"), {"status": "all", "submitted_by": operator.pk})
    assert "Duplicate of #12, see there" in mine.content.decode()


def test_review_by_date_and_the_due_list(client, manager):
    due = _approved(manager, user_message="Due one")
    later = _approved(manager, user_message="Later one")
    review_services.training_example_set_review_by(example=due, user=manager, review_by=timezone.localdate())
    review_services.training_example_set_review_by(
        example=later, user=manager, review_by=timezone.localdate() + timedelta(days=30)
    )
    client.force_login(manager)
    listed = client.get(reverse("dashboard:training_library"), {"status": "approved", "due": "on"}).context[
        "examples"
    ]
    assert [e.pk for e in listed] == [due.pk]


def test_bulk_actions_touch_only_selected_pending_examples(client, manager, operator):
    pending = TrainingExampleFactory(submitted_by=operator)
    other_pending = TrainingExampleFactory(submitted_by=operator)
    approved = _approved(manager)
    client.force_login(manager)
    response = client.post(
        reverse("dashboard:training_review"),
        {"action": "reject", "ids": [pending.pk, approved.pk], "note": "n"},
        follow=True,
    )
    statuses = dict(TrainingExample.objects.values_list("pk", "status"))
    assert statuses == {pending.pk: "rejected", other_pending.pk: "pending", approved.pk: "approved"}
    assert f"#{approved.pk}: not pending" in response.content.decode()


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({}, ["pending_conv", "pending_manual"]),
        ({"example_type": "bad"}, ["pending_manual"]),
        ({"source": "conversation"}, ["pending_conv"]),
        ({"source": "manual"}, ["pending_manual"]),
        ({"channel": "instagram"}, ["pending_conv"]),
        ({"status": "approved"}, ["approved"]),
        ({"q": "manual words"}, ["pending_manual"]),
    ],
)
def test_queue_filters(client, manager, operator, make_conversation, params, expected):
    conversation, replies = make_conversation(1)
    made = {
        "pending_conv": TrainingExampleFactory(
            submitted_by=operator, conversation=conversation, message=replies[0], user_message="conv words"
        ),
        "pending_manual": TrainingExampleFactory(
            submitted_by=operator, example_type="bad", user_message="manual words"
        ),
        "approved": _approved(manager, user_message="approved words"),
    }
    client.force_login(manager)
    shown = client.get(reverse("dashboard:training_review"), params).context["examples"]
    names = {example.pk: name for name, example in made.items()}
    assert [names[e.pk] for e in shown] == expected


def test_queue_filters_by_submitter_and_date(client, manager, operator, make_user):
    other = make_user("operator", username="other_op")
    mine = TrainingExampleFactory(submitted_by=operator)
    theirs = TrainingExampleFactory(submitted_by=other)
    TrainingExample.objects.filter(pk=theirs.pk).update(created_at=timezone.now() - timedelta(days=10))
    client.force_login(manager)
    by_submitter = client.get(reverse("dashboard:training_review"), {"submitted_by": other.pk}).context[
        "examples"
    ]
    assert [e.pk for e in by_submitter] == [theirs.pk]
    since = (timezone.localdate() - timedelta(days=1)).isoformat()
    recent = client.get(reverse("dashboard:training_review"), {"created_from": since}).context["examples"]
    assert [e.pk for e in recent] == [mine.pk]


def test_similar_pending_examples_are_grouped(client, manager, operator):
    a = TrainingExampleFactory(submitted_by=operator, user_message="Can I pay in three installments?")
    b = TrainingExampleFactory(submitted_by=operator, user_message="can i pay in 3 installments")
    c = TrainingExampleFactory(submitted_by=operator, user_message="What time is the weekly call?")
    client.force_login(manager)
    shown = {e.pk: e for e in client.get(reverse("dashboard:training_review")).context["examples"]}
    assert shown[a.pk].group == shown[b.pk].group == a.pk
    assert shown[c.pk].group is None
    assert shown[a.pk].group_ids == f"{a.pk} {b.pk}"


def test_per_reviewer_progress(client, manager, make_user):
    second = make_user("manager", username="second_manager")
    for reviewer, count in ((manager, 3), (second, 1)):
        for _ in range(count):
            services.training_example_approve(example=TrainingExampleFactory(), reviewer=reviewer)
    services.training_example_reject(example=TrainingExampleFactory(), reviewer=second, note="no")
    client.force_login(manager)
    progress = client.get(reverse("dashboard:training_review")).context["progress"]
    assert [(r["approved"], r["rejected"], r["today"]) for r in progress] == [(3, 0, 3), (1, 1, 2)]


@pytest.mark.parametrize("rows", [3, 20])
def test_review_queue_query_count_is_pinned(
    client, manager, operator, make_conversation, rows, django_assert_num_queries
):
    approved = _approved(
        manager, user_message=PRICE_QUESTION, example_type="correction", expected_response="$300"
    )
    for i in range(rows):
        conversation, replies = make_conversation(2)
        example = TrainingExampleFactory(
            submitted_by=UserFactory(username=f"sub{i}"),
            conversation=conversation,
            message=replies[1],
            user_message=f"{PRICE_QUESTION} {i}",
            example_type="correction",
            expected_response="Free for everyone",
        )
        review_services.example_similar_record(example=example)
    client.force_login(manager)
    # session, user, context processor (4), submitters, page count, rows, excerpts, similar examples,
    # pending total, reviewer progress.
    with django_assert_num_queries(13):
        response = client.get(reverse("dashboard:training_review"))
    examples = response.context["examples"]
    assert len(examples) == rows and all(
        e.conflicts and e.conflicts[0].example_id == approved.pk for e in examples
    )
    assert all(e.group is not None for e in examples)  # same question: one group


def test_library_search_and_detail_history(client, manager, operator):
    example = services.training_example_submit_manual(
        submitter=operator,
        user_message="Is there a payment plan?",
        ai_response="No.",
        example_type="bad",
        feedback="We do have one.",
    )
    services.training_example_approve(example=example, reviewer=manager, note="Yes")
    _approved(manager, user_message="Something else entirely")
    client.force_login(operator)
    found = client.get(reverse("dashboard:training_library"), {"q": "payment plan"}).context["examples"]
    assert [e.pk for e in found] == [example.pk]
    page = client.get(reverse("dashboard:training_example_detail", args=[example.pk]))
    assert [a.verb for a in page.context["history"]] == ["training.submitted", "training.approved"]
    assert (
        client.post(
            reverse("dashboard:training_example_detail", args=[example.pk]), {"action": "retire"}
        ).status_code
        == 403
    )
