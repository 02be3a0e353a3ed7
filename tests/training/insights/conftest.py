import datetime as dt

import pytest

from leads.models import Activity, Conversation, Lead
from prompts.models import PromptVersionConversation
from tests.factories import (
    AgentMessageFactory,
    ConversationFactory,
    LeadFactory,
    MessageFactory,
    PromptVersionFactory,
    TrainingExampleFactory,
)
from training.insights.selectors import HANDOFF_VERB
from training.models import ExampleStatus, ExampleType, TrainingExample

UTC = dt.UTC
START = dt.date(2026, 3, 1)
END = dt.date(2026, 3, 10)


def at(day: int, hour: int = 12, minute: int = 0, month: int = 3) -> dt.datetime:
    return dt.datetime(2026, month, day, hour, minute, tzinfo=UTC)


@pytest.fixture
def make_example(db):
    """A training example with its timestamps set (they are auto_now fields, so set them after saving)."""

    def make(
        *,
        created: dt.datetime,
        status: str = ExampleStatus.PENDING,
        decided: dt.datetime | None = None,
        example_type: str = ExampleType.GOOD,
        submitted_by=None,
        decided_by=None,
        feedback: str = "Fine",
        message=None,
    ) -> TrainingExample:
        if status != ExampleStatus.PENDING and decided is None:
            decided = created + dt.timedelta(hours=1)
        example = TrainingExampleFactory(
            example_type=example_type,
            expected_response="Better answer" if example_type == ExampleType.CORRECTION else "",
            feedback=feedback,
            submitted_by=submitted_by,
            message=message,
            conversation=message.conversation if message is not None else None,
            ai_response=message.text if message is not None else "Some answer",
        )
        TrainingExample.objects.filter(pk=example.pk).update(
            created_at=created, status=status, decided_at=decided, decided_by=decided_by
        )
        example.refresh_from_db()
        return example

    return make


@pytest.fixture
def make_reply(db):
    """An agent reply by `version` in a new conversation (with the lead message it answers)."""

    def make(*, version, text: str = "Agent answer", conversation=None):
        conversation = conversation or ConversationFactory()
        asked = MessageFactory(conversation=conversation, text="Lead question")
        return AgentMessageFactory(
            conversation=conversation, in_reply_to=asked, prompt_version=version, text=text
        )

    return make


@pytest.fixture
def make_lead(db):
    def make(*, created: dt.datetime, status: str = "new", version=None, qualified: bool = False) -> Lead:
        lead = LeadFactory(status=status)
        Lead.objects.filter(pk=lead.pk).update(created_at=created)
        if version is not None:
            conversation = ConversationFactory(lead=lead)
            PromptVersionConversation.objects.create(
                prompt_version=version,
                conversation=conversation,
                first_reply_at=created,
                last_reply_at=created + dt.timedelta(minutes=5),
                qualified_at=created + dt.timedelta(minutes=6) if qualified else None,
            )
        return lead

    return make


@pytest.fixture
def make_handoff(db):
    def make(*, lead, created: dt.datetime, reason: str, verb: str = HANDOFF_VERB) -> Activity:
        activity = Activity.objects.create(lead=lead, verb=verb, data={"reason": reason})
        Activity.objects.filter(pk=activity.pk).update(created_at=created)
        return activity

    return make


@pytest.fixture
def versions(db):
    return PromptVersionFactory(version=1), PromptVersionFactory(version=2, is_active=True)


def conversations_of(lead) -> list[Conversation]:
    return list(lead.conversations.all())
