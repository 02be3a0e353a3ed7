"""The demo seed data (fixtures/demo.json) loads cleanly and says what fixtures/README.md promises."""

import json
from pathlib import Path

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command

from leads.models import Conversation, Lead, LeadStatus, Message, MessageRole
from prompts.models import PromptVersion, PromptVersionConversation

FIXTURE = "fixtures/demo.json"
ROOT = Path(__file__).resolve().parent.parent
DEMO_PASSWORD = "demo-pass-2026"
ROLES = ["admin", "manager", "operator", "viewer"]

pytestmark = pytest.mark.django_db


@pytest.fixture
def demo():
    call_command("loaddata", FIXTURE, verbosity=0)


@pytest.mark.parametrize("username", ROLES)
def test_demo_user_is_in_its_role_and_can_log_in(demo, client, username):
    user = get_user_model().objects.get(username=username)

    assert list(user.groups.values_list("name", flat=True)) == [username]
    assert user.is_staff and user.is_active and not user.is_superuser
    assert user.email.endswith("@example.com")
    assert client.login(username=username, password=DEMO_PASSWORD)
    assert not client.login(username=username, password="wrong-password")


def test_demo_users_carry_their_roles_permissions(demo):
    users = get_user_model().objects.in_bulk(field_name="username")

    assert get_user_model().objects.count() == 4
    assert users["admin"].has_perm("auth.add_user")
    assert users["manager"].has_perm("prompts.activate_promptversion")
    assert not users["manager"].has_perm("auth.add_user")
    assert users["operator"].has_perm("training.add_trainingexample")
    assert not users["operator"].has_perm("prompts.activate_promptversion")
    assert users["viewer"].has_perm("leads.view_lead")
    assert not users["viewer"].has_perm("leads.change_lead")


def test_demo_leads_and_conversation(demo):
    assert Lead.objects.count() == 2
    instagram, whatsapp = Lead.objects.get(pk=1), Lead.objects.get(pk=2)
    assert (instagram.channel, instagram.status) == ("instagram", LeadStatus.ENGAGED)
    assert {"need", "budget", "timeline"} <= instagram.qualification_data.keys()
    assert (whatsapp.channel, whatsapp.status) == ("whatsapp", LeadStatus.NEW)
    assert not whatsapp.conversations.exists()

    conversation = Conversation.objects.get()
    assert (conversation.lead_id, conversation.channel, conversation.status) == (1, "instagram", "open")

    messages = list(conversation.messages.order_by("created_at", "id"))
    assert len(messages) == 20
    assert [m.role for m in messages] == [MessageRole.LEAD, MessageRole.AGENT] * 10
    # Fixture timestamps survive loaddata (raw saves skip auto_now_add).
    assert messages[0].created_at.isoformat() == "2026-11-22T16:42:07+00:00"
    assert all(
        earlier.created_at < later.created_at for earlier, later in zip(messages, messages[1:], strict=False)
    )
    assert conversation.last_message_at == messages[-1].created_at == instagram.last_message_at


def test_agent_messages_are_stamped_replies_to_the_previous_lead_message(demo):
    messages = list(Message.objects.order_by("created_at", "id"))
    for lead_message, agent_message in zip(messages[::2], messages[1::2], strict=True):
        assert agent_message.prompt_version_id == 1
        assert agent_message.in_reply_to_id == lead_message.pk
        assert agent_message.delivery_status == "returned"
        assert agent_message.model == "gpt-4o-mini"
        assert agent_message.prompt_tokens and agent_message.completion_tokens and agent_message.latency_ms
        assert lead_message.prompt_version_id is None
        assert lead_message.delivery_status == "answered"


def test_one_active_prompt_version_with_a_full_prompt_and_consistent_figures(demo):
    version = PromptVersion.objects.get(is_active=True)
    assert PromptVersion.objects.count() == 1
    assert version.version == 1
    assert len(version.content) > 10_000
    assert version.activated_at is not None
    assert version.author.username == "admin"
    assert version.content == (ROOT / "fixtures/prompts/sales_agent_v1.md").read_text(encoding="utf-8")

    fact = PromptVersionConversation.objects.get()
    replies = Message.objects.filter(role=MessageRole.AGENT).order_by("created_at")
    agent_times = list(replies.values_list("created_at", flat=True))
    assert (fact.first_reply_at, fact.last_reply_at) == (agent_times[0], agent_times[-1])
    assert fact.qualified_at is None
    assert version.total_conversations == version.conversation_facts.count() == 1
    assert version.total_replies == version.messages.count() == 10
    assert version.qualified_conversations == 0


def test_fixture_is_what_the_generator_builds():
    from fixtures import build_demo

    assert build_demo.build() == json.loads((ROOT / FIXTURE).read_text(encoding="utf-8"))


def test_schema_verifies_after_loading(demo):
    call_command("verify_schema", verbosity=0)


LEAD_FIELD_KEYS = {
    "need",
    "budget",
    "timeline",
    "decision_maker",
    "company",
    "role",
    "email",
    "phone",
    "preferred_contact_time",
    "current_solution",
    "objection",
    "first_name",
    "last_name",
}


def test_prompt_worked_examples_follow_its_output_contract():
    prompt = (ROOT / "fixtures/prompts/sales_agent_v1.md").read_text(encoding="utf-8")
    examples = [json.loads(line) for line in prompt.splitlines() if line.startswith('{"reply": "')]

    assert len(examples) >= 5
    for example in examples:
        assert set(example) == {"reply", "qualified", "lead_fields", "handoff", "handoff_reason"}
        assert example["reply"] and set(example["lead_fields"]) <= LEAD_FIELD_KEYS
        assert (example["handoff_reason"] is not None) == example["handoff"]
    # Every allowed key is listed in the prompt itself, so the agent knows them.
    assert all(f'"{key}"' in prompt for key in LEAD_FIELD_KEYS)
