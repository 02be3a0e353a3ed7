"""Figures survive a lost task: prompts.reconcile_figures credits what the per-reply tasks missed."""

import pytest

from leads.services import lead_set_status
from prompts.models import PromptVersionConversation
from prompts.services import prompt_figures_reconcile
from tests.factories import AgentMessageFactory, ConversationFactory, MessageFactory, PromptVersionFactory

pytestmark = pytest.mark.django_db


def test_replies_whose_task_never_ran_are_credited_once():
    version = PromptVersionFactory(is_active=True)
    conversation = ConversationFactory()
    for i in range(2):
        asked = MessageFactory(conversation=conversation, text=f"q{i}")
        AgentMessageFactory(conversation=conversation, in_reply_to=asked, prompt_version=version)
    other = AgentMessageFactory(prompt_version=version)  # a second conversation

    assert prompt_figures_reconcile() == {"replies": 3, "qualifications": 0, "versions": 1}
    version.refresh_from_db()
    assert (version.total_conversations, version.total_replies) == (2, 3)
    assert PromptVersionConversation.objects.filter(conversation=other.conversation).count() == 1
    # Nothing left to credit: a second sweep changes nothing.
    assert prompt_figures_reconcile()["replies"] == 0
    version.refresh_from_db()
    assert (version.total_conversations, version.total_replies) == (2, 3)


def test_a_qualification_whose_task_never_ran_is_credited_to_the_last_version(
    django_capture_on_commit_callbacks,
):
    old, new = PromptVersionFactory(), PromptVersionFactory(is_active=True)
    conversation = ConversationFactory()
    AgentMessageFactory(conversation=conversation, prompt_version=old)
    AgentMessageFactory(conversation=conversation, prompt_version=new)
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        lead_set_status(lead=conversation.lead, status="qualified")
    assert len(callbacks) == 0  # leads queues nothing: prompts pulls the qualification from leads

    result = prompt_figures_reconcile()
    assert result["qualifications"] == 1
    new.refresh_from_db()
    old.refresh_from_db()
    assert (new.qualified_conversations, old.qualified_conversations) == (1, 0)
    assert prompt_figures_reconcile()["qualifications"] == 0
