"""The leads admin shows what the services own and lets nobody rewrite it."""

import pytest
from django.urls import reverse

from leads.models import Message
from tests.factories import AgentMessageFactory, LeadFactory, UserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def root(client):
    user = UserFactory(username="root", is_superuser=True)
    client.force_login(user)
    return user


def test_lead_status_pause_and_handoff_are_read_only(client, root):
    lead = LeadFactory(status="new")
    page = client.get(reverse("admin:leads_lead_change", args=[lead.pk])).content.decode()
    service_owned = ("status", "bot_paused", "needs_human", "handoff_reason")
    service_owned += ("taken_over_by", "waiting_since_0")  # the inbox's takeover
    for field in service_owned:
        assert f'name="{field}"' not in page, field
    # The editable contact fields are still a form.
    assert 'name="email"' in page


def test_lead_admin_post_cannot_change_status(client, root):
    lead = LeadFactory(status="new")
    url = reverse("admin:leads_lead_change", args=[lead.pk])
    form = {
        "manychat_subscriber_id": lead.manychat_subscriber_id,
        "channel": lead.channel,
        "first_name": lead.first_name,
        "last_name": lead.last_name,
        "username": lead.username,
        "phone": "",
        "email": "new@example.com",
        "qualification_data": "{}",
        "status": "converted",
        "bot_paused": "on",
        "needs_human": "on",
    }
    client.post(url, form)
    lead.refresh_from_db()
    assert (lead.status, lead.bot_paused, lead.needs_human) == ("new", False, False)


def test_messages_cannot_be_added_or_edited_in_admin(client, root):
    reply = AgentMessageFactory(text="The real reply")
    assert client.get(reverse("admin:leads_message_add")).status_code == 403
    url = reverse("admin:leads_message_change", args=[reply.pk])
    page = client.get(url)
    assert page.status_code == 200  # still visible
    assert 'name="text"' not in page.content.decode()
    client.raise_request_exception = False
    fake = {"conversation": reply.conversation_id, "role": "agent", "text": "A fake reply"}
    response = client.post(url, fake)
    assert response.status_code == 403
    assert Message.objects.get(pk=reply.pk).text == "The real reply"


def test_admin_site_names_the_product(client, root):
    page = client.get(reverse("admin:index")).content.decode()
    assert "DM Sales Agent administration" in page
    assert "Django administration" not in page
