import datetime as dt

import pytest
from django.utils import timezone
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from leads.models import Notification
from tests.factories import TrainingExampleFactory, UserFactory
from training.models import ExampleStatus, TrainingExample

pytestmark = pytest.mark.django_db

EXAMPLES = "/api/training/examples/"
SUBMIT = "/api/training/submit/"


def approve_url(example_id):
    return f"/api/training/approve/{example_id}/"


def manual_payload(**overrides):
    payload = {
        "user_message": "Do you ship to Canada?",
        "ai_response": "No.",
        "example_type": "correction",
        "feedback": "We do ship to Canada.",
        "expected_response": "Yes, we ship to Canada in 5-7 days.",
    }
    payload.update(overrides)
    return payload


def test_full_flow_operator_submits_from_conversation_manager_approves(
    api, operator, manager, make_conversation
):
    conversation, replies = make_conversation(2)
    response = api(operator).post(
        SUBMIT,
        {
            "conversation_id": conversation.pk,
            "message_id": replies[0].pk,
            "example_type": "good",
            "feedback": "Friendly and correct",
        },
        format="json",
    )
    assert response.status_code == 201, response.data
    body = response.data
    assert body["user_message"] == "Lead question 0" and body["ai_response"] == "Agent answer 0"
    assert body["status"] == "pending" and body["lead_id"] == conversation.lead_id
    assert body["submitted_by_name"] == operator.get_full_name()
    assert Notification.objects.filter(recipient=manager, verb="training.submitted").count() == 1

    # The operator may not decide; the manager may.
    assert (
        api(operator).post(approve_url(body["id"]), {"action": "approve"}, format="json").status_code == 403
    )
    response = api(manager).post(
        approve_url(body["id"]), {"action": "approve", "note": "Use this"}, format="json"
    )
    assert response.status_code == 200, response.data
    assert response.data["status"] == "approved"
    assert response.data["approved_by_name"] == manager.get_full_name()
    assert response.data["review_note"] == "Use this"
    assert Notification.objects.filter(recipient=operator, verb="training.approved").count() == 1

    # Approving twice: a clear 400 naming the field.
    response = api(manager).post(approve_url(body["id"]), {"action": "approve"}, format="json")
    assert response.status_code == 400 and "status" in response.data

    # Reopen, then reject.
    assert (
        api(manager).post(approve_url(body["id"]), {"action": "reopen"}, format="json").data["status"]
        == "pending"
    )
    response = api(manager).post(approve_url(body["id"]), {"action": "reject", "note": "dup"}, format="json")
    assert response.data["status"] == "rejected"


def test_manual_submit_with_token_auth(manager):
    token = Token.objects.create(user=manager)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {token.key}")
    response = client.post(SUBMIT, manual_payload(), format="json")
    assert response.status_code == 201, response.data
    assert TrainingExample.objects.get().expected_response.startswith("Yes")


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"feedback": ""}, "feedback"),
        ({"feedback": None}, "feedback"),
        ({"expected_response": ""}, "expected_response"),
        ({"example_type": "excellent"}, "example_type"),
        ({"user_message": ""}, "user_message"),
        ({"ai_response": ""}, "ai_response"),
    ],
)
@pytest.mark.parametrize("url", [SUBMIT, EXAMPLES])
def test_bad_inputs_get_400_naming_the_field(api, operator, overrides, field, url):
    payload = {k: v for k, v in manual_payload(**overrides).items() if v is not None}
    response = api(operator).post(url, payload, format="json")
    assert response.status_code == 400
    assert field in response.data, response.data
    assert not TrainingExample.objects.exists()


def test_missing_feedback_key_is_named(api, operator):
    payload = manual_payload()
    del payload["feedback"]
    response = api(operator).post(SUBMIT, payload, format="json")
    assert response.status_code == 400 and "feedback" in response.data


def test_message_from_another_conversation_or_not_an_agent_reply(api, operator, make_conversation):
    conversation, _ = make_conversation(1)
    other, other_replies = make_conversation(1)
    payload = {
        "conversation_id": conversation.pk,
        "message_id": other_replies[0].pk,
        "example_type": "good",
        "feedback": "x",
    }
    response = api(operator).post(SUBMIT, payload, format="json")
    assert response.status_code == 400 and "message_id" in response.data
    lead_message = other_replies[0].in_reply_to
    response = api(operator).post(
        SUBMIT, {**payload, "conversation_id": other.pk, "message_id": lead_message.pk}, format="json"
    )
    assert response.status_code == 400 and "message_id" in response.data
    response = api(operator).post(SUBMIT, {**payload, "message_id": 999999}, format="json")
    assert response.status_code == 400 and "message_id" in response.data


def test_viewer_gets_403_on_submit_and_anonymous_is_refused(api, viewer):
    assert api(viewer).post(SUBMIT, manual_payload(), format="json").status_code == 403
    assert api(viewer).post(EXAMPLES, manual_payload(), format="json").status_code == 403
    assert api().get(EXAMPLES).status_code in (401, 403)
    assert api(viewer).get(EXAMPLES).status_code == 200


def test_status_and_approval_cannot_be_set_on_create_or_patch(api, operator, manager):
    payload = manual_payload(status="approved", approved_by=manager.pk, approved_at="2026-01-01T00:00:00Z")
    response = api(operator).post(EXAMPLES, payload, format="json")
    assert response.status_code == 201
    example = TrainingExample.objects.get(pk=response.data["id"])
    assert example.status == ExampleStatus.PENDING
    assert example.decided_by is None and example.decided_at is None

    response = api(manager).patch(
        f"{EXAMPLES}{example.pk}/",
        {
            "status": "approved",
            "approved_by": manager.pk,
            "approved_at": "2026-01-01T00:00:00Z",
            "feedback": "new",
        },
        format="json",
    )
    assert response.status_code == 200
    example.refresh_from_db()
    assert example.feedback == "new"
    assert (
        example.status == ExampleStatus.PENDING and example.decided_by is None and example.decided_at is None
    )


def test_detail_patch_delete_permissions(api, make_user, operator, manager, viewer):
    other = make_user("operator", username="other_op")
    example_id = api(operator).post(EXAMPLES, manual_payload(), format="json").data["id"]
    url = f"{EXAMPLES}{example_id}/"
    assert api(viewer).get(url).data["id"] == example_id
    assert api(viewer).patch(url, {"feedback": "x"}, format="json").status_code == 403
    assert api(other).patch(url, {"feedback": "x"}, format="json").status_code == 403
    assert api(other).delete(url).status_code == 403
    response = api(operator).patch(url, {"example_type": "good", "expected_response": ""}, format="json")
    assert response.status_code == 200 and response.data["example_type"] == "good"
    response = api(operator).patch(url, {"example_type": "correction"}, format="json")
    assert response.status_code == 400 and "expected_response" in response.data
    api(manager).post(approve_url(example_id), {"action": "approve"}, format="json")
    response = api(manager).delete(url)
    assert response.status_code == 400 and "status" in response.data
    api(manager).post(approve_url(example_id), {"action": "reopen"}, format="json")
    assert api(operator).delete(url).status_code == 204
    assert api(operator).get(url).status_code == 404


def test_approve_bad_action_and_unknown_example(api, manager, operator):
    example = TrainingExampleFactory(submitted_by=operator)
    response = api(manager).post(approve_url(example.pk), {"action": "maybe"}, format="json")
    assert response.status_code == 400 and "action" in response.data
    assert api(manager).post(approve_url(999999), {"action": "approve"}, format="json").status_code == 404


def test_list_filters_search_and_pagination(api, operator, manager, viewer, make_conversation):
    conversation, replies = make_conversation(1)
    from_conversation = TrainingExampleFactory(
        submitted_by=operator,
        conversation=conversation,
        message=replies[0],
        example_type="good",
        feedback="Mentions the Refund policy",
    )
    approved = TrainingExampleFactory(
        submitted_by=manager,
        decided_by=manager,
        status="approved",
        decided_at=timezone.now(),
        example_type="bad",
    )
    old = TrainingExampleFactory(submitted_by=operator, example_type="correction", expected_response="x")
    TrainingExample.objects.filter(pk=old.pk).update(created_at=timezone.now() - dt.timedelta(days=30))

    def ids(**params):
        response = api(viewer).get(EXAMPLES, params)
        assert response.status_code == 200, response.data
        return {row["id"] for row in response.data["results"]}

    assert ids() == {from_conversation.pk, approved.pk, old.pk}
    assert ids(status="approved") == {approved.pk}
    assert ids(example_type="correction") == {old.pk}
    assert ids(submitted_by=operator.pk) == {from_conversation.pk, old.pk}
    assert ids(conversation=conversation.pk) == {from_conversation.pk}
    assert ids(lead=conversation.lead_id) == {from_conversation.pk}
    week_ago = (timezone.now() - dt.timedelta(days=7)).isoformat()
    assert ids(created_after=week_ago) == {from_conversation.pk, approved.pk}
    assert ids(created_before=week_ago) == {old.pk}
    assert ids(q="refund POLICY") == {from_conversation.pk}
    response = api(viewer).get(EXAMPLES, {"status": "archived"})
    assert response.status_code == 400 and "status" in response.data
    response = api(viewer).get(EXAMPLES, {"page_size": 2})
    assert response.data["count"] == 3 and len(response.data["results"]) == 2 and response.data["next"]
    row = next(r for r in api(viewer).get(EXAMPLES).data["results"] if r["id"] == approved.pk)
    assert row["submitted_by_name"] == manager.get_full_name()
    assert row["approved_by_name"] == manager.get_full_name()


def test_names_fall_back_to_username_and_none(api, viewer):
    nameless = UserFactory(username="nameless", first_name="", last_name="")
    TrainingExampleFactory(submitted_by=nameless)
    row = api(viewer).get(EXAMPLES).data["results"][0]
    assert row["submitted_by_name"] == "nameless"
    assert row["approved_by_name"] is None
