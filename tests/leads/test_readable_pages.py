"""Branded error pages (DEBUG off) and admin labels that read as sentences."""

from types import SimpleNamespace

import pytest
from django.template.loader import render_to_string
from django.urls import reverse

from leads.models import Channel
from leads.services import lead_pause_bot
from tests.factories import ConversationFactory, LeadFactory, NotificationFactory, TrainingExampleFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def production(settings):
    settings.DEBUG = False


def test_missing_page_is_branded_for_a_signed_in_user(client, operator, production):
    client.force_login(operator)
    response = client.get("/dashboard/leads/999999/")
    assert response.status_code == 404
    html = response.content.decode()
    assert 'data-testid="not-found"' in html and "Page not found" in html
    assert 'href="/dashboard/"' in html and 'id="mainnav"' in html


def test_missing_page_offers_the_login_to_a_visitor(client, production):
    response = client.get("/no-such-page/")
    assert response.status_code == 404
    html = response.content.decode()
    assert 'data-testid="not-found"' in html and reverse("login") in html and 'id="mainnav"' not in html


@pytest.mark.urls("tests.leads.error_urls")
def test_server_error_is_branded(client, operator, production):
    client.raise_request_exception = False
    client.force_login(operator)
    response = client.get("/boom/")
    assert response.status_code == 500
    html = response.content.decode()
    assert 'data-testid="server-error"' in html and "Something went wrong" in html
    assert "RuntimeError" not in html and "a bug" not in html


def test_admin_labels_read_as_sentences(client, admin_user_role):
    lead = LeadFactory(first_name="Ana", last_name="Lima", channel=Channel.INSTAGRAM)
    conversation = ConversationFactory(lead=lead, channel=Channel.INSTAGRAM)
    assert str(conversation) == "Conversation with Ana Lima on Instagram"
    lead_pause_bot(lead=lead, actor=admin_user_role)
    activity = lead.activities.get()
    assert str(activity).startswith(f"{admin_user_role.get_full_name()} paused the bot (")
    example = TrainingExampleFactory(example_type="bad", status="pending")
    assert str(example) == f"Bad example #{example.pk} (pending)"
    client.force_login(admin_user_role)
    html = client.get(reverse("admin:training_trainingexample_change", args=[example.pk])).content.decode()
    assert "AI response" in html and "Ai response" not in html
    html = client.get(reverse("admin:leads_activity_changelist")).content.decode()
    assert f"{admin_user_role.get_full_name()} paused the bot" in html and "What happened" in html


@pytest.mark.parametrize(("count", "words"), [(1, "1 conversation</div>"), (3, "3 conversations</div>")])
def test_counts_read_in_the_singular_and_the_plural(count, words):
    active = SimpleNamespace(success_rate=0.5, qualified_conversations=1, total_conversations=count)
    html = render_to_string("training/home.html", {"active_prompt": active, "stats": {}})
    assert words in html


def test_marking_one_notification_read_says_one(client, operator):
    NotificationFactory(recipient=operator)
    client.force_login(operator)
    response = client.post(reverse("dashboard:notifications"), {"action": "read_all"}, follow=True)
    assert "Marked 1 notification as read." in response.content.decode()
