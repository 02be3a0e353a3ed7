from datetime import timedelta

import pytest
from django.utils import timezone

from leads.models import Lead, Message
from prompts.models import PromptVersion
from tests.factories import (
    AgentMessageFactory,
    ConversationFactory,
    LeadFactory,
    MessageFactory,
    PromptVersionFactory,
)


@pytest.fixture(autouse=True)
def _followup_settings(settings):
    settings.FOLLOWUP_DELAYS_HOURS = ["4", "20"]
    settings.FOLLOWUP_QUIET_HOURS = ""
    settings.FOLLOWUP_TEAM_TIMEZONE = "UTC"
    settings.FOLLOWUP_WINDOW_MARGIN_MINUTES = 30
    settings.FOLLOWUP_LEAD_DAILY_MESSAGE_CAP = 30
    settings.FOLLOWUP_DAILY_CAP = 1000
    settings.CELERY_TASK_ALWAYS_EAGER = True
    from config.celery import app

    eager = app.conf.task_always_eager
    app.conf.task_always_eager = True
    yield
    app.conf.task_always_eager = eager


@pytest.fixture
def active_version(db) -> PromptVersion:
    PromptVersion.objects.update(is_active=False)
    newest = max(PromptVersion.objects.values_list("version", flat=True), default=0)
    return PromptVersionFactory(
        version=newest + 1, content="You are Ava, a sales assistant for Acme Gyms.", is_active=True
    )


def at(message: Message, when) -> Message:
    Message.objects.filter(pk=message.pk).update(created_at=when)
    message.created_at = when
    return message


@pytest.fixture
def silent_lead(db, active_version):
    """A lead who wrote `hours_ago` hours ago and got the agent's answer, then went quiet."""

    def make(hours_ago: float = 5.0, *, tz: str = "", version=None, **lead_fields) -> tuple[Lead, Message]:
        now = timezone.now()
        wrote = now - timedelta(hours=hours_ago)
        lead = LeadFactory(last_message_at=wrote, timezone=tz, **lead_fields)
        conversation = ConversationFactory(lead=lead, last_message_at=wrote)
        asked = at(MessageFactory(conversation=conversation, text="How much is a membership?"), wrote)
        reply = at(
            AgentMessageFactory(
                conversation=conversation,
                in_reply_to=asked,
                text="It starts at 49 a month. What are your goals?",
                prompt_version=version or active_version,
            ),
            wrote + timedelta(seconds=5),
        )
        return lead, reply

    return make
