import pytest
from django.urls import reverse

from leads.models import LeadStatus
from tests.factories import LeadFactory, NotificationFactory, TrainingExampleFactory

pytestmark = pytest.mark.django_db

# Lead page: session, user, the context processor (unread count, role groups, permissions x2), the lead
# (with assignee), its transcript (with prompt versions), the flagged examples, the examples each agent reply
# was written with (training.retrieval, one query) and the activity log.
LEAD_PAGE_QUERIES = 11


@pytest.mark.parametrize("rows", [2, 20])
def test_lead_page_query_count_is_constant(
    client, operator, make_conversation, rows, django_assert_num_queries
):
    conversation, replies = make_conversation(rows)
    for reply in replies[::2]:
        TrainingExampleFactory(conversation=conversation, message=reply, submitted_by=operator)
    client.force_login(operator)
    with django_assert_num_queries(LEAD_PAGE_QUERIES):
        response = client.get(reverse("dashboard:lead_detail", args=[conversation.lead_id]))
    assert response.status_code == 200
    assert len(response.context["transcript"]) == 2 * rows
    html = response.content.decode()
    assert html.count("Submit as training") == rows
    assert html.count('title="Training example #') == len(replies[::2])


def test_viewer_sees_lead_without_controls(client, viewer, make_conversation):
    conversation, _ = make_conversation(1)
    client.force_login(viewer)
    html = client.get(reverse("dashboard:lead_detail", args=[conversation.lead_id])).content.decode()
    assert "Agent answer 0" in html
    assert "Submit as training" not in html and "Pause bot" not in html
    response = client.post(
        reverse("dashboard:lead_action", args=[conversation.lead_id]), {"action": "status", "status": "lost"}
    )
    assert response.status_code == 403


def test_operator_changes_status_and_pauses_bot_from_the_page(client, operator):
    lead = LeadFactory()
    client.force_login(operator)
    url = reverse("dashboard:lead_action", args=[lead.pk])
    response = client.post(url, {"action": "status", "status": "qualified"}, follow=True)
    assert "Lead marked as Qualified." in response.content.decode()
    client.post(url, {"action": "pause"})
    lead.refresh_from_db()
    assert lead.status == LeadStatus.QUALIFIED and lead.bot_paused
    html = client.get(reverse("dashboard:lead_detail", args=[lead.pk])).content.decode()
    assert "Resume bot" in html
    client.post(url, {"action": "resume"})
    lead.refresh_from_db()
    assert not lead.bot_paused
    response = client.post(url, {"action": "status"}, follow=True)
    assert "could not be understood" in response.content.decode()


def test_lead_list_search_filter_and_pagination(client, viewer):
    for i in range(30):
        LeadFactory(first_name=f"Person{i:02d}", status=LeadStatus.LOST if i < 3 else LeadStatus.NEW)
    client.force_login(viewer)
    page = client.get(reverse("dashboard:leads"))
    assert len(page.context["leads"]) == 25 and page.context["page"].paginator.num_pages == 2
    assert "page=2" in page.content.decode()
    found = client.get(reverse("dashboard:leads"), {"q": "person07"}).context["leads"]
    assert [lead.first_name for lead in found] == ["Person07"]
    lost = client.get(reverse("dashboard:leads"), {"status": "lost"}).context["leads"]
    assert len(lost) == 3


def test_notifications_page_mark_one_and_all(client, operator):
    first = NotificationFactory(recipient=operator, message="Example approved", url="/dashboard/training/")
    NotificationFactory(recipient=operator, message="Another")
    client.force_login(operator)
    html = client.get(reverse("dashboard:home")).content.decode()
    assert 'data-testid="unread-count">2<' in html
    response = client.post(reverse("dashboard:notifications"), {"notification_id": first.pk, "open": "1"})
    assert response["Location"] == "/dashboard/training/"
    first.refresh_from_db()
    assert first.read_at is not None
    client.post(reverse("dashboard:notifications"), {"action": "read_all"})
    html = client.get(reverse("dashboard:notifications")).content.decode()
    assert 'data-testid="unread-count"' not in html and "Example approved" in html


def test_overview_shows_lead_and_training_figures(client, viewer, operator, prompt_version):
    LeadFactory(status=LeadStatus.QUALIFIED)
    LeadFactory(needs_human=True)
    TrainingExampleFactory(submitted_by=operator)
    client.force_login(viewer)
    response = client.get(reverse("dashboard:home"))
    assert response.context["lead_counts"]["total"] == 2
    assert response.context["lead_counts"]["qualified"] == 1
    assert response.context["training"]["pending"] == 1
    assert response.context["active_prompt"] == prompt_version
    html = response.content.decode()
    assert 'data-testid="pending-count">1<' in html and f"v{prompt_version.version}" in html
