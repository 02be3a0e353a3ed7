"""The inbox in the DRF API: the same operations, the role rules, the OpenAPI schema."""

import pytest
from django.urls import reverse

from leads.models import Lead, Message, MessageRole, Note

pytestmark = pytest.mark.django_db

WRITES = [
    ("messages/", {"text": "Hello from the API"}),
    ("notes/", {"text": "Internal"}),
    ("assign/", {"assignee_id": None}),
    ("take-over/", {}),
    ("hand-back/", {}),
]


@pytest.mark.parametrize(("path", "body"), WRITES)
def test_viewers_read_but_may_not_write(api, viewer, lead_with_reply, path, body):
    lead, _, _ = lead_with_reply
    client = api(viewer)
    assert client.get(f"/api/inbox/leads/{lead.pk}/thread/").status_code == 200
    assert client.get("/api/inbox/?queue=needs_person").status_code == 200
    response = client.post(f"/api/inbox/leads/{lead.pk}/{path}", body, format="json")
    assert response.status_code == 403
    assert not Message.objects.filter(role=MessageRole.OPERATOR).exists() and not Note.objects.exists()


def test_anonymous_is_refused(api, lead_with_reply):
    lead, _, _ = lead_with_reply
    assert api().get("/api/inbox/").status_code in (401, 403)
    assert api().post(f"/api/inbox/leads/{lead.pk}/take-over/").status_code in (401, 403)


def test_operator_works_a_lead_through_the_api(
    api, operator, lead_with_reply, fake_manychat, django_capture_on_commit_callbacks
):
    lead, _, _ = lead_with_reply
    client = api(operator)
    taken = client.post(f"/api/inbox/leads/{lead.pk}/take-over/")
    assert taken.status_code == 200 and taken.data["taken_over_by"]["id"] == operator.pk
    with django_capture_on_commit_callbacks(execute=True):
        sent = client.post(f"/api/inbox/leads/{lead.pk}/messages/", {"text": "On it!"}, format="json")
    assert sent.status_code == 201 and sent.data["role"] == "operator"
    assert fake_manychat.sent_texts() == ["On it!"]
    note = client.post(f"/api/inbox/leads/{lead.pk}/notes/", {"text": "VIP"}, format="json")
    assert note.status_code == 201 and note.data["kind"] == "note"
    thread = client.get(f"/api/inbox/leads/{lead.pk}/thread/").data
    kinds = [(item["kind"], item["role"]) for item in thread["items"]]
    assert kinds == [("message", "lead"), ("message", "agent"), ("message", "operator"), ("note", "note")]
    assert thread["items"][2]["delivery_status"] == "sent"
    after = client.get(f"/api/inbox/leads/{lead.pk}/thread/", {"after": thread["items"][2]["created_at"]})
    assert [item["kind"] for item in after.data["items"]] == ["note"]

    candidates = client.get("/api/inbox/candidates/", {"lead_id": lead.pk}).data
    assert [c["expected_response"] for c in candidates] == ["On it!"]
    submitted = client.post(
        f"/api/inbox/candidates/{candidates[0]['id']}/submit/", {"feedback": "Be brief"}, format="json"
    )
    assert submitted.status_code == 201 and submitted.data["candidate"]["status"] == "submitted"

    with django_capture_on_commit_callbacks(execute=True):
        back = client.post(f"/api/inbox/leads/{lead.pk}/hand-back/")
    assert back.status_code == 200 and back.data["taken_over_by"] is None and not back.data["bot_paused"]
    assert Lead.objects.get(pk=lead.pk).waiting_since is None


@pytest.mark.parametrize(
    ("method", "path", "body", "status", "field"),
    [
        ("post", "/api/inbox/leads/999999/messages/", {"text": "x"}, 404, "lead_id"),
        ("post", "/api/inbox/candidates/999999/submit/", {"feedback": "x"}, 404, "candidate_id"),
        ("get", "/api/inbox/?sort=nope", None, 400, "sort"),
        ("get", "/api/inbox/?assignee=bob", None, 400, "assignee"),
        ("get", "/api/inbox/candidates/", None, 400, "lead_id"),
    ],
)
def test_bad_requests_name_the_field(api, operator, method, path, body, status, field):
    client = api(operator)
    response = getattr(client, method)(path, body, format="json") if body else getattr(client, method)(path)
    assert response.status_code == status
    assert field in response.data


def test_submit_needs_feedback(api, operator, lead_with_reply, fake_manychat):
    from agent.inbox import services
    from training.models import CorrectionCandidate, TrainingExample

    lead, _, _ = lead_with_reply
    services.inbox_message_send(lead=lead, user=operator, text="Here you go")
    candidate = CorrectionCandidate.objects.get()
    response = api(operator).post(
        f"/api/inbox/candidates/{candidate.pk}/submit/", {"feedback": " "}, format="json"
    )
    assert response.status_code == 400 and "feedback" in response.data
    assert not TrainingExample.objects.exists()


def test_every_inbox_operation_is_in_the_openapi_schema(api, admin_user_role):
    response = api(admin_user_role).get(reverse("schema") + "?format=json")
    assert response.status_code == 200
    import json

    schema = json.loads(response.content)
    operations = {op["operationId"] for path in schema["paths"].values() for op in path.values()}
    expected = {
        "inbox_queue",
        "inbox_thread",
        "inbox_send",
        "inbox_note_add",
        "inbox_assign",
        "inbox_take_over",
        "inbox_hand_back",
        "inbox_candidates",
        "inbox_candidate_submit",
        "inbox_candidate_dismiss",
    }
    assert expected <= operations
