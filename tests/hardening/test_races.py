"""Races on PostgreSQL at the sizes the issue names (tests/agent and tests/prompts race smaller groups).

Ten webhook requests at once through the real view, each in its own thread and database connection;
performance tasks recording replies and qualifications at once. Two racing activations are covered by
tests/prompts/test_concurrency.py.
"""

import pytest
from django.db import connection
from django.utils import timezone

from leads.models import Conversation, Lead, Message, MessageRole
from prompts import services as prompt_services
from prompts.models import PromptVersion
from tests.agent.conftest import SECRET as AGENT_SECRET
from tests.agent.conftest import flat_body
from tests.agent.test_async import _post_concurrently
from tests.concurrency import race
from tests.factories import AgentMessageFactory, ConversationFactory, MessageFactory, PromptVersionFactory

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


@pytest.fixture(autouse=True)
def _postgres_only(settings):
    if connection.vendor != "postgresql":
        pytest.skip("needs PostgreSQL row locks and concurrent writers (CI runs it on PostgreSQL)")
    settings.MANYCHAT_WEBHOOK_SECRET = AGENT_SECRET
    settings.AGENT_ASYNC_MODE = False
    settings.AGENT_WEBHOOK_RATE_LIMIT = ""
    settings.MANYCHAT_API_TOKEN = ""


def _race(calls):
    return race(*calls)


def test_ten_first_messages_from_one_subscriber_make_one_lead(fake_openai):
    PromptVersionFactory(is_active=True)
    fake_openai.reply_with({"reply": "Hi!"}, delay=0.2)
    statuses = _post_concurrently([flat_body(subscriber_id="1010", text=f"first {i}") for i in range(10)])
    assert statuses == [200] * 10
    assert Lead.objects.filter(manychat_subscriber_id="1010").count() == 1
    assert Conversation.objects.count() == 1
    assert Message.objects.filter(role=MessageRole.LEAD).count() == 10
    replies = Message.objects.filter(role=MessageRole.AGENT)
    assert replies.count() == 10 and replies.values("in_reply_to").distinct().count() == 10


@pytest.mark.parametrize("extra", [{"message_id": "mid-10"}, {}], ids=["message_id", "same_text"])
def test_ten_copies_of_one_delivery_make_one_message_one_call_one_reply(fake_openai, extra):
    PromptVersionFactory(is_active=True)
    fake_openai.reply_with({"reply": "Exactly once."}, delay=0.3)
    statuses = _post_concurrently([flat_body(subscriber_id="2020", **extra)] * 10)
    assert statuses == [200] * 10
    assert Message.objects.filter(role=MessageRole.LEAD).count() == 1
    assert list(Message.objects.filter(role=MessageRole.AGENT).values_list("text", flat=True)) == [
        "Exactly once."
    ]
    assert fake_openai.calls == 1


def test_concurrent_performance_tasks_give_exact_counts():
    version = PromptVersionFactory(is_active=True)
    conversations = [ConversationFactory() for _ in range(4)]
    replies = []
    for conversation in conversations:
        for _ in range(3):
            inbound = MessageFactory(conversation=conversation)
            replies.append(
                AgentMessageFactory(conversation=conversation, in_reply_to=inbound, prompt_version=version)
            )
    # Every reply recorded twice (a task retried), all at once.
    calls = [
        (lambda mid=reply.pk: prompt_services.prompt_version_record_reply(message_id=mid))
        for reply in replies * 2
    ]
    outcomes = _race(calls)
    assert [o for o in outcomes if isinstance(o, Exception)] == []
    version.refresh_from_db()
    assert version.total_conversations == 4
    assert version.total_replies == 12

    # Two qualifications of each lead at once credit one conversation each.
    now = timezone.now()
    calls = [
        (
            lambda lid=c.lead_id: prompt_services.prompt_version_record_qualification(
                lead_id=lid, qualified_at=now
            )
        )
        for c in conversations * 2
    ]
    outcomes = _race(calls)
    assert [o for o in outcomes if isinstance(o, Exception)] == []
    version.refresh_from_db()
    assert version.qualified_conversations == 4
    assert PromptVersion.objects.filter(is_active=True).count() == 1
