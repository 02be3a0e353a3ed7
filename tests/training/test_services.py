import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import IntegrityError, transaction

from leads.models import Activity, MessageRole, Notification
from tests.factories import MessageFactory, TrainingExampleFactory
from training import services
from training.models import ExampleStatus, TrainingExample

pytestmark = pytest.mark.django_db


def submit_manual(user, **overrides):
    data = {
        "user_message": "How much is it?",
        "ai_response": "It is free!",
        "example_type": "bad",
        "feedback": "Wrong price.",
        "expected_response": "",
    }
    data.update(overrides)
    return services.training_example_submit_manual(submitter=user, **data)


def test_submit_from_conversation_takes_the_lead_message_before_the_reply(
    operator, manager, make_conversation
):
    conversation, replies = make_conversation(3)
    example = services.training_example_submit_from_conversation(
        message=replies[1], submitter=operator, example_type="good", feedback="Nice tone"
    )
    assert example.user_message == "Lead question 1"
    assert example.ai_response == "Agent answer 1"
    assert example.conversation_id == conversation.pk
    assert example.message_id == replies[1].pk
    assert example.status == ExampleStatus.PENDING and example.submitted_by == operator
    assert (
        Activity.objects.filter(verb="training.submitted", lead=conversation.lead, actor=operator).count()
        == 1
    )
    notes = Notification.objects.filter(verb="training.submitted")
    assert [n.recipient for n in notes] == [manager]
    assert f"#{example.pk}" in notes[0].message


def test_submit_from_conversation_without_in_reply_to_uses_previous_lead_message(operator, make_conversation):
    conversation, replies = make_conversation(1)
    later_lead = MessageFactory(conversation=conversation, text="And shipping?")
    reply = MessageFactory(conversation=conversation, role=MessageRole.AGENT, text="Ships tomorrow")
    example = services.training_example_submit_from_conversation(
        message=reply, submitter=operator, example_type="good", feedback="ok"
    )
    assert example.user_message == later_lead.text


@pytest.mark.parametrize("role", [MessageRole.LEAD, MessageRole.OPERATOR])
def test_only_agent_replies_can_be_flagged(operator, make_conversation, role):
    conversation, _ = make_conversation(1)
    message = MessageFactory(conversation=conversation, role=role)
    with pytest.raises(ValidationError) as exc:
        services.training_example_submit_from_conversation(
            message=message, submitter=operator, example_type="good", feedback="x"
        )
    assert "message_id" in exc.value.message_dict
    assert not TrainingExample.objects.exists()


def test_reply_with_no_lead_message_before_it_is_refused(operator, make_conversation):
    conversation, _ = make_conversation(0)
    reply = MessageFactory(conversation=conversation, role=MessageRole.AGENT, text="Hi, I'm the bot")
    with pytest.raises(ValidationError) as exc:
        services.training_example_submit_from_conversation(
            message=reply, submitter=operator, example_type="good", feedback="x"
        )
    assert "message_id" in exc.value.message_dict


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"feedback": ""}, "feedback"),
        ({"feedback": "   "}, "feedback"),
        ({"example_type": "correction", "expected_response": ""}, "expected_response"),
        ({"example_type": "great"}, "example_type"),
        ({"user_message": ""}, "user_message"),
        ({"ai_response": " "}, "ai_response"),
    ],
)
def test_bad_inputs_name_the_field_and_write_nothing(operator, overrides, field):
    with pytest.raises(ValidationError) as exc:
        submit_manual(operator, **overrides)
    assert field in exc.value.message_dict
    assert not TrainingExample.objects.exists()
    assert not Notification.objects.exists()
    assert not Activity.objects.exists()


def test_viewer_cannot_submit(viewer):
    with pytest.raises(PermissionDenied):
        submit_manual(viewer)


def test_correction_with_expected_response_is_accepted(operator):
    example = submit_manual(operator, example_type="correction", expected_response="It costs $99.")
    assert example.expected_response == "It costs $99."


def test_approve_notifies_submitter_and_logs_activity(operator, manager):
    example = submit_manual(operator)
    services.training_example_approve(example=example, reviewer=manager, note="Good catch")
    example.refresh_from_db()
    assert example.status == ExampleStatus.APPROVED
    assert example.decided_by == manager and example.decided_at is not None
    assert example.review_note == "Good catch"
    assert Notification.objects.filter(recipient=operator, verb="training.approved").count() == 1
    assert Activity.objects.filter(verb="training.approved", actor=manager).count() == 1


def test_approving_twice_is_refused(operator, manager):
    example = submit_manual(operator)
    services.training_example_approve(example=example, reviewer=manager)
    with pytest.raises(ValidationError) as exc:
        services.training_example_reject(example=example, reviewer=manager)
    assert "status" in exc.value.message_dict
    example.refresh_from_db()
    assert example.status == ExampleStatus.APPROVED


def test_operator_cannot_decide(operator):
    example = submit_manual(operator)
    with pytest.raises(PermissionDenied):
        services.training_example_approve(example=example, reviewer=operator)


def test_reopen_clears_the_decision(operator, manager):
    example = submit_manual(operator)
    services.training_example_reject(example=example, reviewer=manager, note="no")
    example = services.training_example_reopen(example=example, user=manager)
    example.refresh_from_db()
    assert example.status == ExampleStatus.PENDING
    assert example.decided_by is None and example.decided_at is None
    assert Notification.objects.filter(recipient=operator, verb="training.reopened").exists()
    with pytest.raises(ValidationError):
        services.training_example_reopen(example=example, user=manager)
    with pytest.raises(PermissionDenied):
        services.training_example_reopen(
            example=TrainingExampleFactory(status="approved", decided_at=example.created_at), user=operator
        )


def test_update_by_submitter_and_manager_only_while_pending(make_user, operator, manager):
    other = make_user("operator", username="other_operator")
    example = submit_manual(operator)
    services.training_example_update(example=example, user=operator, data={"feedback": "Price is wrong."})
    example.refresh_from_db()
    assert example.feedback == "Price is wrong."
    with pytest.raises(PermissionDenied):
        services.training_example_update(example=example, user=other, data={"feedback": "mine now"})
    services.training_example_update(example=example, user=manager, data={"example_type": "good"})
    with pytest.raises(ValidationError) as exc:
        services.training_example_update(example=example, user=operator, data={"example_type": "correction"})
    assert "expected_response" in exc.value.message_dict
    services.training_example_approve(example=example, reviewer=manager)
    with pytest.raises(ValidationError) as exc:
        services.training_example_update(example=example, user=manager, data={"feedback": "late"})
    assert "status" in exc.value.message_dict


def test_update_ignores_status_fields(operator):
    example = submit_manual(operator)
    services.training_example_update(
        example=example, user=operator, data={"status": "approved", "approved_at": "2026-01-01T00:00:00Z"}
    )
    example.refresh_from_db()
    assert example.status == ExampleStatus.PENDING and example.decided_at is None


def test_delete_pending_only(make_user, operator, manager, viewer):
    mine = submit_manual(operator)
    with pytest.raises(PermissionDenied):
        services.training_example_delete(example=mine, user=viewer)
    services.training_example_delete(example=mine, user=operator)
    assert not TrainingExample.objects.filter(pk=mine.pk).exists()
    decided = submit_manual(operator)
    services.training_example_approve(example=decided, reviewer=manager)
    with pytest.raises(ValidationError):
        services.training_example_delete(example=decided, user=manager)
    assert TrainingExample.objects.filter(pk=decided.pk).exists()


def test_database_refuses_a_pending_example_with_a_decision_time(operator):
    example = submit_manual(operator)
    with pytest.raises(IntegrityError), transaction.atomic():
        TrainingExample.objects.filter(pk=example.pk).update(decided_at=example.created_at)


def test_stats_count_this_week_from_monday(operator):
    import datetime as dt

    from django.utils import timezone

    from training.selectors import training_example_stats

    current = submit_manual(operator)
    old = submit_manual(operator, example_type="good")
    TrainingExample.objects.filter(pk=old.pk).update(created_at=timezone.now() - dt.timedelta(days=8))
    stats = training_example_stats()
    assert stats["total"] == 2 and stats["pending"] == 2 and stats["this_week"] == 1
    by_type = {value: count for _, value, count in stats["by_type"]}
    assert by_type == {"good": 1, "bad": 1, "correction": 0}
    assert current.pk != old.pk


def test_decide_bulk_decides_what_it_may_and_names_what_it_skipped(manager, operator):
    pending = TrainingExampleFactory(submitted_by=operator)
    also_pending = TrainingExampleFactory(submitted_by=operator)
    decided = TrainingExampleFactory(submitted_by=operator)
    services.training_examples_decide_bulk(
        example_ids=[decided.pk], reviewer=manager, action=services.BulkAction.REJECT
    )

    result = services.training_examples_decide_bulk(
        example_ids=[pending.pk, decided.pk, also_pending.pk, 999999],
        reviewer=manager,
        action=services.BulkAction.APPROVE,
        note="ok",
    )
    assert result.done == 2
    assert [example_id for example_id, _ in result.skipped] == [decided.pk]
    assert result.done_message == "Approved 2 examples."
    assert result.skipped_message.startswith(f"Skipped #{decided.pk}: This example was already rejected")
    statuses = dict(TrainingExample.objects.values_list("pk", "status"))
    assert (statuses[pending.pk], statuses[also_pending.pk], statuses[decided.pk]) == (
        "approved",
        "approved",
        "rejected",
    )


def test_decide_bulk_without_the_permission_decides_nothing(operator):
    example = TrainingExampleFactory()
    result = services.training_examples_decide_bulk(
        example_ids=[example.pk], reviewer=operator, action=services.BulkAction.REOPEN
    )
    assert result.done == 0
    assert result.skipped == ((example.pk, "Your role may not reopen training examples."),)
    example.refresh_from_db()
    assert example.status == "pending"
