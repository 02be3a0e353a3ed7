import pytest

from leads.models import Activity, LeadStatus
from tests.factories import LeadFactory, NotificationFactory

pytestmark = pytest.mark.django_db


def test_lead_list_search_status_and_pagination(api, viewer):
    alice = LeadFactory(first_name="Alice", last_name="Martin", status=LeadStatus.QUALIFIED)
    bob = LeadFactory(first_name="Bob", last_name="Stone", username="bobby")
    LeadFactory(first_name="Carol")
    client = api(viewer)
    assert client.get("/api/leads/").data["count"] == 3
    assert [r["id"] for r in client.get("/api/leads/", {"search": "mart"}).data["results"]] == [alice.pk]
    assert [r["id"] for r in client.get("/api/leads/", {"search": "bobby"}).data["results"]] == [bob.pk]
    assert [r["id"] for r in client.get("/api/leads/", {"status": "qualified"}).data["results"]] == [alice.pk]
    response = client.get("/api/leads/", {"status": "sleeping"})
    assert response.status_code == 400 and "status" in response.data
    assert len(client.get("/api/leads/", {"page_size": 2}).data["results"]) == 2


def test_lead_detail_includes_transcript(api, viewer, make_conversation):
    conversation, _ = make_conversation(2)
    response = api(viewer).get(f"/api/leads/{conversation.lead_id}/")
    assert response.status_code == 200
    assert [m["text"] for m in response.data["messages"]] == [
        "Lead question 0",
        "Agent answer 0",
        "Lead question 1",
        "Agent answer 1",
    ]
    assert api(viewer).get("/api/leads/999999/").status_code == 404


@pytest.mark.parametrize(
    ("role", "allowed"), [("admin", True), ("manager", True), ("operator", True), ("viewer", False)]
)
def test_status_and_bot_controls_by_role(api, make_user, role, allowed):
    lead = LeadFactory()
    client = api(make_user(role))
    response = client.post(f"/api/leads/{lead.pk}/status/", {"status": "lost"}, format="json")
    assert response.status_code == (200 if allowed else 403)
    response = client.post(f"/api/leads/{lead.pk}/pause-bot/")
    assert response.status_code == (200 if allowed else 403)
    lead.refresh_from_db()
    assert lead.status == ("lost" if allowed else "new")
    assert lead.bot_paused is allowed
    if allowed:
        response = client.post(f"/api/leads/{lead.pk}/resume-bot/")
        assert response.status_code == 200 and response.data["bot_paused"] is False
        assert set(Activity.objects.filter(lead=lead).values_list("verb", flat=True)) == {
            "lead.status_changed",
            "lead.bot_paused",
            "lead.bot_resumed",
        }


def test_bad_status_is_400_naming_the_field(api, operator):
    lead = LeadFactory()
    response = api(operator).post(f"/api/leads/{lead.pk}/status/", {"status": "won"}, format="json")
    assert response.status_code == 400 and "status" in response.data
    response = api(operator).post(f"/api/leads/{lead.pk}/status/", {}, format="json")
    assert response.status_code == 400 and "status" in response.data


def test_notifications_list_and_mark_read(api, operator, viewer):
    mine = [NotificationFactory(recipient=operator, message=f"n{i}") for i in range(3)]
    theirs = NotificationFactory(recipient=viewer)
    client = api(operator)
    response = client.get("/api/notifications/")
    assert response.data["count"] == 3 and response.data["unread"] == 3
    assert client.post(f"/api/notifications/{theirs.pk}/read/").status_code == 404
    response = client.post(f"/api/notifications/{mine[0].pk}/read/")
    assert response.status_code == 200 and response.data["read_at"]
    assert client.get("/api/notifications/", {"unread": "true"}).data["count"] == 2
    assert client.post("/api/notifications/read-all/").data == {"marked": 2}
    assert client.get("/api/notifications/").data["unread"] == 0
    theirs.refresh_from_db()
    assert theirs.read_at is None
