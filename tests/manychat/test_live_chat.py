"""The lead page links to the contact's ManyChat Live Chat (from Full Contact Data's live_chat_url)."""

import pytest
from django.urls import reverse

from leads.models import Lead
from tests.agent.test_payloads import FULL_CONTACT

pytestmark = pytest.mark.django_db


def test_live_chat_url_is_kept_from_the_body_and_linked_from_the_lead_page(
    webhook, active_prompt, fake_openai, client, make_user
):
    assert webhook({"data": FULL_CONTACT, "channel": "instagram"}).status_code == 200
    lead = Lead.objects.get()
    assert lead.live_chat_url == "https://manychat.com/fb998877/chat/1234567890"
    client.force_login(make_user("viewer"))
    html = client.get(reverse("dashboard:lead_detail", args=[lead.pk])).content.decode()
    assert 'href="https://manychat.com/fb998877/chat/1234567890"' in html
    assert "Open in ManyChat Live Chat" in html


def test_no_link_without_a_url(client, make_user):
    from tests.factories import LeadFactory

    lead = LeadFactory()
    client.force_login(make_user("viewer"))
    html = client.get(reverse("dashboard:lead_detail", args=[lead.pk])).content.decode()
    assert "Open in ManyChat Live Chat" not in html
