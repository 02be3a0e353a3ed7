"""The catalog in a real turn: through the webhook, the fake model over HTTP, and the stored rows."""

import pytest

from agent.catalog.services import catalog_release
from leads.models import Lead, Message, MessageRole
from prompts.catalog.services import catalog_import
from prompts.services import prompt_version_activate
from tests.agent.conftest import SECRET, flat_body
from tests.factories import PromptVersionFactory

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _agent(settings):
    settings.MANYCHAT_WEBHOOK_SECRET = SECRET
    settings.AGENT_ASYNC_MODE = False
    settings.AGENT_GROUNDING_SAFE_TEXT = "Let me check that with the team."
    from config.celery import app

    eager = app.conf.task_always_eager
    app.conf.task_always_eager = True
    yield
    app.conf.task_always_eager = eager


@pytest.fixture
def webhook(client):
    def post(body):
        return client.post(
            "/webhooks/manychat/", data=body, content_type="application/json", HTTP_X_WEBHOOK_SECRET=SECRET
        )

    return post


@pytest.fixture
def catalog_live(manager):
    PromptVersionFactory(version=1, is_active=True, content="You are Ava, a sales assistant.")
    catalog_import(
        data={
            "offers": [
                {"name": "Starter coaching", "price": "129", "currency": "USD", "billing_terms": "per month"},
                {
                    "name": "Premium",
                    "price": "2000",
                    "currency": "USD",
                    "booking_url": "https://cal.com/acme/intro",
                },
            ]
        },
        user=manager,
    )
    release = catalog_release(user=manager, change_note="prices")
    prompt_version_activate(version=release.draft, user=manager)
    return release


def _texts(response) -> list[str]:
    return [m["text"] for m in response.json()["content"]["messages"]]


def test_an_invented_price_is_not_sent_and_the_lead_goes_to_a_person(webhook, fake_openai, catalog_live):
    fake_openai.reply_with({"reply": "Starter is just $149 a month!"})
    response = webhook(flat_body(subscriber_id="4242", text="How much is the starter plan?"))
    assert response.status_code == 200
    assert _texts(response) == ["Let me check that with the team."]
    lead = Lead.objects.get(manychat_subscriber_id="4242")
    assert lead.needs_human and "$149" in lead.handoff_reason
    reply = Message.objects.get(conversation__lead=lead, role=MessageRole.AGENT)
    assert reply.text == "Let me check that with the team."
    assert "amount '$149'" in reply.error
    assert reply.prompt_version_id == catalog_live.draft.pk


def test_catalog_facts_are_sent_and_shown_to_the_model(webhook, fake_openai, catalog_live):
    fake_openai.reply_with(
        {"reply": "Starter is 129 USD per month, Premium 2k. Book: https://cal.com/acme/intro"}
    )
    response = webhook(flat_body(subscriber_id="4243", text="How much is the starter plan?"))
    assert _texts(response) == ["Starter is 129 USD per month, Premium 2k. Book: https://cal.com/acme/intro"]
    system = fake_openai.last_messages()[0]["content"]
    assert "FACTS YOU MAY STATE (catalog v1)" in system and "Starter coaching: 129 USD per month" in system
    assert not Lead.objects.get(manychat_subscriber_id="4243").needs_human


def test_without_a_catalog_nothing_is_refused(webhook, fake_openai):
    PromptVersionFactory(version=1, is_active=True)
    fake_openai.reply_with({"reply": "It is $149 a month"})
    response = webhook(flat_body(subscriber_id="4244"))
    assert _texts(response) == ["It is $149 a month"]


def test_held_back_replies_are_counted_per_version_on_insights(
    webhook, fake_openai, catalog_live, client, manager
):
    fake_openai.reply_with({"reply": "Starter is just $149 a month!"})
    webhook(flat_body(subscriber_id="4250", text="How much is the starter plan?"))
    webhook(flat_body(subscriber_id="4251", text="And the premium one?"))
    fake_openai.reply_with({"reply": "Starter is 129 USD per month."})
    webhook(flat_body(subscriber_id="4252", text="How much?"))
    assert Message.objects.filter(role=MessageRole.AGENT).count() == 3

    client.force_login(manager)
    page = client.get("/dashboard/training/insights/").content.decode()
    version = catalog_live.draft.version
    assert f'data-testid="refused-v{version}">2<' in page
    assert "refusals-none" not in page


def test_insights_say_when_no_reply_was_held_back(client, manager):
    client.force_login(manager)
    assert 'data-testid="refusals-none"' in client.get("/dashboard/training/insights/").content.decode()
