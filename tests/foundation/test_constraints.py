"""The database itself refuses what the old system's half-applied migration let through."""

import pytest
from django.db import IntegrityError, transaction
from django.utils import timezone

from tests.factories import (
    ConversationFactory,
    LeadFactory,
    MessageFactory,
    PromptVersionFactory,
    TrainingExampleFactory,
)
from training.models import TrainingExample

pytestmark = pytest.mark.django_db


def _insert_example(**overrides) -> None:
    fields = {
        "user_message": "How much is it?",
        "ai_response": "It is free!",
        "feedback": "Wrong price",
        "example_type": "bad",
        "status": "pending",
        "expected_response": "",
        **overrides,
    }
    # A queryset update/bulk path skips model validation, so only the database can refuse it.
    with transaction.atomic():
        TrainingExample.objects.bulk_create([TrainingExample(**fields)])


@pytest.mark.parametrize(
    "overrides",
    [
        pytest.param({"example_type": "excellent"}, id="bad-example-type"),
        pytest.param({"status": "maybe"}, id="bad-status"),
        pytest.param(
            {"example_type": "correction", "expected_response": ""}, id="correction-without-expected"
        ),
        pytest.param({"feedback": ""}, id="empty-feedback"),
        pytest.param({"ai_response": ""}, id="empty-ai-response"),
        pytest.param({"user_message": ""}, id="empty-user-message"),
        pytest.param({"status": "approved"}, id="approved-without-time"),
        pytest.param({"status": "pending", "decided_at": timezone.now()}, id="pending-with-decision-time"),
    ],
)
def test_database_refuses_invalid_training_example(overrides):
    with pytest.raises(IntegrityError):
        _insert_example(**overrides)
    assert TrainingExample.objects.count() == 0


def test_database_accepts_a_valid_correction():
    _insert_example(example_type="correction", expected_response="It starts at $49 a month.")
    example = TrainingExample.objects.get()
    assert example.metadata == {}
    assert example.status == "pending"
    assert example.created_at is not None and example.updated_at is not None


def test_updated_at_is_maintained_automatically():
    example = TrainingExampleFactory()
    before = example.updated_at
    example.feedback = "Changed"
    example.save(update_fields=["feedback", "updated_at"])
    example.refresh_from_db()
    assert example.updated_at > before


def test_second_active_prompt_version_is_refused():
    PromptVersionFactory(is_active=True)
    with pytest.raises(IntegrityError), transaction.atomic():
        PromptVersionFactory(is_active=True)
    assert PromptVersionFactory._meta.model.objects.filter(is_active=True).count() == 1


def test_prompt_version_numbers_are_unique_and_content_required():
    PromptVersionFactory(version=7)
    with pytest.raises(IntegrityError), transaction.atomic():
        PromptVersionFactory(version=7)
    with pytest.raises(IntegrityError), transaction.atomic():
        PromptVersionFactory(content="")


def test_subscriber_id_is_unique():
    LeadFactory(manychat_subscriber_id="42")
    with pytest.raises(IntegrityError), transaction.atomic():
        LeadFactory(manychat_subscriber_id="42")


@pytest.mark.parametrize("field,value", [("channel", "myspace"), ("status", "hot")])
def test_lead_enumerations_are_checked(field, value):
    with pytest.raises(IntegrityError), transaction.atomic():
        LeadFactory(**{field: value})


def test_one_open_conversation_per_lead():
    lead = LeadFactory()
    ConversationFactory(lead=lead, status="closed")
    ConversationFactory(lead=lead, status="open")
    with pytest.raises(IntegrityError), transaction.atomic():
        ConversationFactory(lead=lead, status="open")


def test_prompt_version_only_on_agent_messages_and_one_reply_per_message():
    version = PromptVersionFactory()
    inbound = MessageFactory(role="lead")
    with pytest.raises(IntegrityError), transaction.atomic():
        MessageFactory(conversation=inbound.conversation, role="lead", prompt_version=version)
    MessageFactory(
        conversation=inbound.conversation, role="agent", prompt_version=version, in_reply_to=inbound
    )
    with pytest.raises(IntegrityError), transaction.atomic():
        MessageFactory(
            conversation=inbound.conversation, role="agent", prompt_version=version, in_reply_to=inbound
        )


def test_dedupe_key_is_unique():
    first = MessageFactory(dedupe_key="mc:abc")
    with pytest.raises(IntegrityError), transaction.atomic():
        MessageFactory(conversation=first.conversation, dedupe_key="mc:abc")


def test_deleting_a_conversation_cascades_to_its_examples():
    conversation = ConversationFactory()
    TrainingExampleFactory(conversation=conversation)
    conversation.delete()
    assert TrainingExample.objects.count() == 0


def test_deleting_a_user_keeps_their_examples(make_user):
    operator = make_user("operator")
    example = TrainingExampleFactory(submitted_by=operator)
    operator.delete()
    example.refresh_from_db()
    assert example.submitted_by is None
