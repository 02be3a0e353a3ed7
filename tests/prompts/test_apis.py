import pytest
from rest_framework.test import APIClient

from leads.models import Activity
from prompts.models import PromptVersion
from tests.factories import ConversationFactory, PromptVersionFactory

pytestmark = pytest.mark.django_db

ROLES = ["admin", "manager", "operator", "viewer", None]  # None: not signed in
STAFF = {"admin", "manager", "operator", "viewer"}
AUTHORS = {"admin", "manager", "operator"}
DEPLOYERS = {"admin", "manager"}


@pytest.fixture
def client_for(make_user):
    def make(role):
        client = APIClient()
        if role is not None:
            client.force_authenticate(make_user(role))
        return client

    return make


def _active_numbers() -> list[int]:
    return list(PromptVersion.objects.filter(is_active=True).values_list("version", flat=True))


# (method, path, body, roles allowed, status when allowed)
ENDPOINTS = [
    ("get", "/api/prompt/versions/", None, STAFF, 200),
    ("post", "/api/prompt/versions/", {"content": "New"}, AUTHORS, 201),
    ("get", "/api/prompt/versions/{v2}/", None, STAFF, 200),
    ("post", "/api/prompt/versions/{v2}/activate/", None, DEPLOYERS, 200),
    ("get", "/api/prompt/active/", None, STAFF, 200),
    ("post", "/api/prompt/active/", {"content": "Live"}, DEPLOYERS, 201),
    ("get", "/api/prompt/versions/{v2}/diff/", None, STAFF, 200),
    ("get", "/api/prompt/versions/{v2}/diff/?against={v3}", None, STAFF, 200),
]


@pytest.mark.parametrize("role", ROLES, ids=lambda r: r or "anonymous")
@pytest.mark.parametrize(("method", "path", "body", "allowed", "ok"), ENDPOINTS, ids=lambda e: str(e))
def test_permissions_matrix(client_for, versions, role, method, path, body, allowed, ok):
    _, v2, v3 = versions
    url = path.format(v2=v2.pk, v3=v3.pk)
    response = getattr(client_for(role), method)(url, body, format="json")
    if role in allowed:
        assert response.status_code == ok, response.content
    else:
        assert response.status_code == 403, response.content
    # A refused write writes nothing.
    if method == "post" and role not in allowed:
        assert PromptVersion.objects.count() == 3 and _active_numbers() == [1]
        assert not Activity.objects.exists()


def test_list_is_newest_first_with_results(client_for, versions, reply):
    v1 = versions[0]
    reply(version=v1, conversation=ConversationFactory(), latency_ms=420)
    body = client_for("viewer").get("/api/prompt/versions/").json()
    assert body["count"] == 3
    assert [row["version"] for row in body["results"]] == [3, 2, 1]
    oldest = body["results"][2]
    assert "content" not in oldest  # the list leaves the (possibly long) text to the detail endpoint
    assert oldest["content_length"] == len(v1.content)
    assert oldest["is_active"] is True
    results = oldest["results"]
    assert (results["conversations"], results["qualified"], results["replies"]) == (1, 0, 1)
    assert results["success_rate"] == 0.0 and results["success_rate_high"] > 0
    assert results["median_latency_ms"] == 420 and results["tokens"] == 160
    assert results["since_activation"]["replies"] == 1
    assert body["results"][0]["results"]["since_activation"] is None


@pytest.mark.parametrize("count", [3, 12])
def test_list_query_count_does_not_grow_with_versions(client_for, django_assert_num_queries, reply, count):
    conversation = ConversationFactory()
    for number in range(1, count + 1):
        reply(version=PromptVersionFactory(version=number), conversation=conversation)
    client = client_for("viewer")
    client.get("/api/prompt/versions/")  # warm the permission cache of the forced user
    # count, page of versions with their SQL figures, two median queries
    with django_assert_num_queries(4):
        response = client.get("/api/prompt/versions/")
    assert len(response.json()["results"]) == count


def test_detail_has_the_full_content(client_for, versions):
    v2 = versions[1]
    body = client_for("viewer").get(f"/api/prompt/versions/{v2.pk}/").json()
    assert body["content"] == v2.content and body["version"] == 2 and body["parent_id"] == versions[0].pk


def test_active_get(client_for, versions):
    body = client_for("viewer").get("/api/prompt/active/").json()
    assert (body["version"], body["content"], body["is_active"]) == (1, versions[0].content, True)


def test_active_get_when_none_is_active(client_for, db):
    PromptVersionFactory(version=1)
    assert client_for("viewer").get("/api/prompt/active/").status_code == 404


def test_create_draft(client_for, versions):
    response = client_for("operator").post(
        "/api/prompt/versions/",
        {"content": "Draft\n", "change_note": "why", "parent": versions[2].pk},
        format="json",
    )
    assert response.status_code == 201
    body = response.json()
    assert (body["version"], body["is_active"], body["content"], body["parent_id"]) == (
        4,
        False,
        "Draft\n",
        versions[2].pk,
    )
    assert body["author"] == "operator_user"
    assert _active_numbers() == [1]


def test_activate_and_roll_back(client_for, versions):
    v1, _, v3 = versions
    client = client_for("manager")
    body = client.post(f"/api/prompt/versions/{v3.pk}/activate/").json()
    assert body["is_active"] is True and body["activated_by"] == "manager_user"
    assert client.post(f"/api/prompt/versions/{v1.pk}/activate/").status_code == 200
    assert _active_numbers() == [1]
    assert [a.data["previous_version"] for a in Activity.objects.order_by("id")] == [1, 3]


def test_deploy(client_for, versions):
    response = client_for("admin").post(
        "/api/prompt/active/", {"content": "Go live", "change_note": "n"}, format="json"
    )
    assert response.status_code == 201
    assert response.json()["version"] == 4 and _active_numbers() == [4]


@pytest.mark.parametrize(
    ("path", "body", "field"),
    [
        ("/api/prompt/versions/", {"content": ""}, "content"),
        ("/api/prompt/versions/", {"content": "   \n"}, "content"),
        ("/api/prompt/versions/", {}, "content"),
        ("/api/prompt/versions/", {"content": "x" * 100_001}, "content"),
        ("/api/prompt/versions/", {"content": "ok", "change_note": "n" * 501}, "change_note"),
        ("/api/prompt/versions/", {"content": "ok", "parent": 999999}, "parent"),
        ("/api/prompt/versions/", {"content": "ok", "parent": "abc"}, "parent"),
        ("/api/prompt/active/", {"content": ""}, "content"),
        ("/api/prompt/active/", {"content": " "}, "content"),
    ],
)
def test_validation_errors(client_for, versions, path, body, field):
    response = client_for("admin").post(path, body, format="json")
    assert response.status_code == 400
    assert field in response.json()
    assert PromptVersion.objects.count() == 3 and _active_numbers() == [1]


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("get", "/api/prompt/versions/999999/"),
        ("post", "/api/prompt/versions/999999/activate/"),
        ("get", "/api/prompt/versions/999999/diff/"),
        ("get", "/api/prompt/versions/{v2}/diff/?against=999999"),
    ],
)
def test_missing_version_is_404(client_for, versions, method, path):
    response = getattr(client_for("admin"), method)(path.format(v2=versions[1].pk))
    assert response.status_code == 404
    assert _active_numbers() == [1]


@pytest.mark.parametrize("method", ["put", "patch", "delete"])
@pytest.mark.parametrize(
    "path", ["/api/prompt/versions/{v1}/", "/api/prompt/versions/", "/api/prompt/active/"]
)
def test_versions_are_immutable(client_for, versions, method, path):
    v1 = versions[0]
    response = getattr(client_for("admin"), method)(
        path.format(v1=v1.pk), {"content": "changed", "is_active": False}, format="json"
    )
    assert response.status_code == 405
    v1.refresh_from_db()
    assert v1.content == "Line one\nLine two\n" and v1.is_active
    assert PromptVersion.objects.count() == 3


def test_diff_defaults_to_the_active_version(client_for, versions):
    _, v2, _ = versions
    body = client_for("viewer").get(f"/api/prompt/versions/{v2.pk}/diff/").json()
    assert (body["version"], body["against"]) == (2, 1)
    assert body["diff"] == ("--- v1\n+++ v2\n@@ -1,2 +1,2 @@\n Line one\n-Line two\n+Line 2, better\n")


def test_diff_against_a_named_version(client_for, versions):
    _, v2, v3 = versions
    body = client_for("viewer").get(f"/api/prompt/versions/{v3.pk}/diff/?against={v2.pk}").json()
    assert body["against"] == 2
    lines = body["diff"].splitlines()
    assert "-Line one" in lines and "-Line 2, better" in lines and "+Completely different" in lines


def test_diff_of_identical_text_is_empty(client_for, versions):
    v1 = versions[0]
    assert client_for("viewer").get(f"/api/prompt/versions/{v1.pk}/diff/").json()["diff"] == ""


def test_diff_needs_something_to_compare_with(client_for, db):
    v = PromptVersionFactory(version=1)
    client = client_for("viewer")
    assert client.get(f"/api/prompt/versions/{v.pk}/diff/").status_code == 400
    assert "against" in client.get(f"/api/prompt/versions/{v.pk}/diff/?against=abc").json()


def test_session_writes_need_the_csrf_token(make_user, versions):
    client = APIClient(enforce_csrf_checks=True)
    client.force_login(make_user("manager"))
    response = client.post(f"/api/prompt/versions/{versions[1].pk}/activate/")
    assert response.status_code == 403
    assert _active_numbers() == [1]


def test_openapi_documents_every_prompt_operation():
    from drf_spectacular.generators import SchemaGenerator

    paths = SchemaGenerator().get_schema(request=None, public=True)["paths"]
    documented = {(path, method) for path, operations in paths.items() for method in operations}
    assert {
        ("/api/prompt/versions/", "get"),
        ("/api/prompt/versions/", "post"),
        ("/api/prompt/versions/{version_id}/", "get"),
        ("/api/prompt/versions/{version_id}/activate/", "post"),
        ("/api/prompt/versions/{version_id}/diff/", "get"),
        ("/api/prompt/active/", "get"),
        ("/api/prompt/active/", "post"),
    } <= documented
    assert "201" in paths["/api/prompt/active/"]["post"]["responses"]
