"""Who may do what: every API operation and dashboard page, for anonymous and for each role.

"Allowed" means the request got past authorisation (any status but 401/403, and never a 5xx); "denied"
means 403 for a signed-in role, 401/403 for an anonymous API call and a redirect to the login page for an
anonymous page. Then object-level checks and mass assignment.
"""

import pytest
from django.test import Client
from django.utils import timezone

from leads.models import Lead, LeadStatus, Notification
from prompts.models import PromptVersion
from tests.factories import NotificationFactory, TrainingExampleFactory
from tests.hardening.conftest import ROLES
from training.models import ExampleStatus, TrainingExample

ALL = {"admin", "manager", "operator", "viewer"}
OPERATE = {"admin", "manager", "operator"}
MANAGE = {"admin", "manager"}

# (method, path template, body, roles allowed). {lead}, {draft}, {active}, {example}, {note} are ids.
API = [
    ("get", "/api/leads/", None, ALL),
    ("get", "/api/leads/{lead}/", None, ALL),
    ("post", "/api/leads/{lead}/status/", {"status": "engaged"}, OPERATE),
    ("post", "/api/leads/{lead}/pause-bot/", {}, OPERATE),
    ("post", "/api/leads/{lead}/resume-bot/", {}, OPERATE),
    ("get", "/api/notifications/", None, ALL),
    ("post", "/api/notifications/read-all/", {}, ALL),
    ("get", "/api/prompt/versions/", None, ALL),
    ("post", "/api/prompt/versions/", {"content": "You are Ava. " * 5, "change_note": "x"}, OPERATE),
    ("get", "/api/prompt/versions/{draft}/", None, ALL),
    ("get", "/api/prompt/versions/{draft}/diff/", None, ALL),
    ("post", "/api/prompt/versions/{draft}/activate/", {}, MANAGE),
    ("get", "/api/prompt/active/", None, ALL),
    ("post", "/api/prompt/active/", {"content": "You are Bea. " * 5, "change_note": "x"}, MANAGE),
    ("post", "/api/prompt/versions/{draft}/evaluate/", {}, OPERATE),
    ("get", "/api/training/examples/", None, ALL),
    ("get", "/api/training/examples/{example}/", None, ALL),
    ("post", "/api/training/approve/{example}/", {"action": "approve"}, MANAGE),
    ("get", "/api/training/insights/", None, ALL),
    ("get", "/api/training/insights.csv", None, ALL),
    ("get", "/api/training/export/", None, ALL),
    ("get", "/api/schema/", None, ALL),  # signed-in only (red team: open to anyone)
]
SUBMIT = {
    "user_message": "Is there parking?",
    "ai_response": "No.",
    "feedback": "Too curt; mention the free car park.",
    "example_type": "good",
}
API += [
    ("post", "/api/training/examples/", SUBMIT, OPERATE),
    ("post", "/api/training/submit/", SUBMIT, OPERATE),
]

# (method, path template, form data, roles allowed)
PAGES = [
    ("get", "/dashboard/", None, ALL),
    ("get", "/dashboard/leads/", None, ALL),
    ("get", "/dashboard/leads/{lead}/", None, ALL),
    ("post", "/dashboard/leads/{lead}/action/", {"action": "pause"}, OPERATE),
    ("get", "/dashboard/notifications/", None, ALL),
    ("post", "/dashboard/notifications/", {"action": "read_all"}, ALL),
    ("get", "/dashboard/training/prompt/", None, ALL),
    (
        "post",
        "/dashboard/training/prompt/draft/",
        {"content": "You are Cy. " * 5, "change_note": "d"},
        OPERATE,
    ),
    (
        "post",
        "/dashboard/training/prompt/deploy/",
        {"content": "You are Di. " * 5, "change_note": "d"},
        MANAGE,
    ),
    ("post", "/dashboard/training/prompt/versions/{draft}/activate/", {}, MANAGE),
    ("post", "/dashboard/training/prompt/evaluate/", {"version_id": "{draft}"}, OPERATE),
    ("get", "/dashboard/training/", None, ALL),
    ("get", "/dashboard/training/submit/", None, OPERATE),
    ("post", "/dashboard/training/submit/", SUBMIT, OPERATE),
    ("get", "/dashboard/training/review/", None, MANAGE),
    ("get", "/dashboard/training/insights/", None, ALL),
    ("get", "/api/docs/", None, ALL),
]


def _ids(world) -> dict[str, int]:
    return {
        "lead": world["lead"].pk,
        "draft": world["draft"].pk,
        "active": world["active"].pk,
        "example": world["example"].pk,
    }


def _fill(value, ids):
    if isinstance(value, str):
        return value.format(**ids)
    if isinstance(value, dict):
        return {key: _fill(item, ids) for key, item in value.items()}
    return value


def _api_client(world, role) -> Client:
    if role is None:
        return Client()
    return Client(HTTP_AUTHORIZATION=f"Token {world['tokens'][role]}")


@pytest.mark.parametrize("role", ROLES, ids=lambda r: r or "anonymous")
@pytest.mark.parametrize(("method", "path", "body", "allowed"), API, ids=[f"{m} {p}" for m, p, _, _ in API])
def test_api_matrix(world, role, method, path, body, allowed, fake_openai):
    ids = _ids(world)
    client = _api_client(world, role)
    url = _fill(path, ids)
    if method == "get":
        response = client.get(url)
    else:
        response = client.post(url, data=_fill(body, ids), content_type="application/json")
    assert response.status_code < 500, response.content[:300]
    if role in allowed:
        assert response.status_code not in (401, 403), response.content[:300]
    elif role is None:
        assert response.status_code in (401, 403)
    else:
        assert response.status_code == 403, response.content[:300]


@pytest.mark.parametrize("role", ROLES, ids=lambda r: r or "anonymous")
@pytest.mark.parametrize(
    ("method", "path", "data", "allowed"), PAGES, ids=[f"{m} {p}" for m, p, _, _ in PAGES]
)
def test_page_matrix(world, client, role, method, path, data, allowed, fake_openai):
    ids = _ids(world)
    if role is not None:
        client.force_login(world["users"][role])
    url = _fill(path, ids)
    response = client.get(url) if method == "get" else client.post(url, data=_fill(data, ids))
    assert response.status_code < 500
    if role in allowed:
        assert response.status_code not in (401, 403)
    elif role is None:
        assert response.status_code == 302 and "/accounts/login/" in response["Location"]
    else:
        assert response.status_code == 403


@pytest.mark.parametrize("role", ROLES, ids=lambda r: r or "anonymous")
def test_admin_site_is_for_staff_only(world, client, role):
    if role is not None:
        client.force_login(world["users"][role])
    response = client.get("/admin/leads/lead/")
    user = world["users"].get(role)
    if user is not None and user.is_staff and user.has_perm("leads.view_lead"):
        assert response.status_code == 200
    else:
        assert response.status_code in (302, 403)


# --- Object level -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("actor", "method", "expected"),
    [
        ("submitter", "patch", 200),
        ("other_operator", "patch", 403),
        ("viewer", "patch", 403),
        ("manager", "patch", 200),
        ("submitter", "delete", 204),
        ("other_operator", "delete", 403),
        ("viewer", "delete", 403),
        ("manager", "delete", 204),
    ],
)
def test_only_the_submitter_or_a_manager_edits_an_example(world, make_user, actor, method, expected):
    users = {
        "submitter": world["users"]["operator"],
        "other_operator": make_user("operator", username="other_operator"),
        "viewer": world["users"]["viewer"],
        "manager": world["users"]["manager"],
    }
    client = Client()
    client.force_login(users[actor])
    example = world["example"]
    url = f"/api/training/examples/{example.pk}/"
    if method == "patch":
        response = client.patch(url, data={"feedback": "Edited feedback."}, content_type="application/json")
    else:
        response = client.delete(url)
    assert response.status_code == expected
    survives = TrainingExample.objects.filter(pk=example.pk).first()
    if expected == 403:
        assert survives is not None and survives.feedback == example.feedback
    elif method == "delete":
        assert survives is None


def test_other_operator_cannot_delete_an_example_from_the_page(world, make_user, client):
    client.force_login(make_user("operator", username="other_operator"))
    response = client.post(f"/dashboard/training/examples/{world['example'].pk}/delete/")
    assert response.status_code == 403
    assert TrainingExample.objects.filter(pk=world["example"].pk).exists()


def test_someone_elses_notification_is_not_found_and_stays_unread(world):
    note = NotificationFactory(recipient=world["users"]["manager"])
    client = _api_client(world, "operator")
    assert client.post(f"/api/notifications/{note.pk}/read/").status_code == 404
    note.refresh_from_db()
    assert note.read_at is None
    listed = client.get("/api/notifications/").json()["results"]
    assert note.pk not in {row["id"] for row in listed}
    assert _api_client(world, "manager").post(f"/api/notifications/{note.pk}/read/").status_code == 200


@pytest.mark.parametrize("path", ["/api/leads/{}/", "/api/prompt/versions/{}/", "/api/training/examples/{}/"])
def test_missing_objects_are_404(world, path):
    assert _api_client(world, "admin").get(path.format(999999)).status_code == 404


# --- Mass assignment --------------------------------------------------------------------------------------

FORGED = {
    "status": "approved",
    "approved_by": 1,
    "approved_at": "2026-01-01T00:00:00Z",
    "submitted_by": 1,
    "review_note": "self-approved",
    "is_active": True,
    "id": 424242,
}


@pytest.mark.parametrize("path", ["/api/training/examples/", "/api/training/submit/"])
def test_create_example_ignores_review_fields(world, path):
    response = _api_client(world, "operator").post(
        path, data={**SUBMIT, **FORGED}, content_type="application/json"
    )
    assert response.status_code == 201
    example = TrainingExample.objects.get(pk=response.json()["id"])
    assert example.pk != FORGED["id"]
    assert example.status == ExampleStatus.PENDING
    assert example.decided_by_id is None and example.decided_at is None
    assert example.submitted_by == world["users"]["operator"]
    assert example.review_note == ""


def test_patch_example_ignores_review_fields(world):
    example = world["example"]
    response = _api_client(world, "manager").patch(
        f"/api/training/examples/{example.pk}/",
        data={**FORGED, "feedback": "Better feedback."},
        content_type="application/json",
    )
    assert response.status_code == 200
    example.refresh_from_db()
    assert example.feedback == "Better feedback."
    assert example.status == ExampleStatus.PENDING
    assert example.decided_by_id is None and example.decided_at is None
    assert example.submitted_by == world["users"]["operator"]


@pytest.mark.parametrize("path", ["/api/prompt/versions/", "/api/prompt/active/"])
def test_prompt_create_ignores_activation_and_counters(world, path):
    forged = {
        "is_active": path.endswith("versions/") or False,
        "version": 999,
        "total_replies": 500,
        "total_conversations": 400,
        "qualified_conversations": 300,
        "activated_by": 1,
        "author": 1,
    }
    response = _api_client(world, "manager").post(
        path,
        data={"content": "You are Eve, a helpful sales assistant.", "change_note": "n", **forged},
        content_type="application/json",
    )
    assert response.status_code == 201
    version = PromptVersion.objects.get(pk=response.json()["id"])
    assert version.version != 999
    assert (version.total_replies, version.total_conversations, version.qualified_conversations) == (0, 0, 0)
    assert version.author == world["users"]["manager"]
    # Creating a draft never activates it; deploying does (that is the operation), and only that one.
    assert version.is_active is path.endswith("active/")
    assert PromptVersion.objects.filter(is_active=True).count() == 1


def test_lead_status_api_writes_only_the_status(world):
    lead = world["lead"]
    response = _api_client(world, "operator").post(
        f"/api/leads/{lead.pk}/status/",
        data={"status": "engaged", "bot_paused": True, "manychat_subscriber_id": "hijack", "first_name": "X"},
        content_type="application/json",
    )
    assert response.status_code == 200
    lead.refresh_from_db()
    assert lead.status == LeadStatus.ENGAGED
    assert lead.bot_paused is False
    assert lead.manychat_subscriber_id != "hijack" and lead.first_name != "X"
    assert not Lead.objects.filter(manychat_subscriber_id="hijack").exists()


def test_notifications_cannot_be_created_through_the_api(world):
    before = Notification.objects.count()
    response = _api_client(world, "admin").post(
        "/api/notifications/", data={"message": "x", "recipient": 1}, content_type="application/json"
    )
    assert response.status_code == 405
    assert Notification.objects.count() == before


def test_a_decided_example_cannot_be_reopened_by_patch(world):
    example = TrainingExampleFactory(
        submitted_by=world["users"]["operator"], status=ExampleStatus.APPROVED, decided_at=timezone.now()
    )
    response = _api_client(world, "operator").patch(
        f"/api/training/examples/{example.pk}/",
        data={"status": "pending", "feedback": "sneaky"},
        content_type="application/json",
    )
    assert response.status_code == 400
    example.refresh_from_db()
    assert example.status == ExampleStatus.APPROVED and example.feedback != "sneaky"
