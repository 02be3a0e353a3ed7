import pytest
from django.urls import reverse
from django.utils import timezone

from leads.models import Notification
from prompts.models import PromptVersionConversation
from tests.factories import ConversationFactory, LeadFactory, TrainingExampleFactory
from training.models import ExampleStatus, TrainingExample

pytestmark = pytest.mark.django_db

SUBMITTED = "Training example submitted successfully!"


@pytest.fixture
def login(client):
    def as_user(user):
        client.force_login(user)
        return client

    return as_user


@pytest.mark.parametrize("role", ["admin", "manager", "operator", "viewer"])
@pytest.mark.parametrize("name", ["home", "training_home", "leads", "notifications"])
def test_every_role_can_open_the_read_pages(make_user, login, role, name):
    client = login(make_user(role))
    response = client.get(reverse(f"dashboard:{name}"))
    assert response.status_code == 200


@pytest.mark.parametrize("name", ["home", "training_home", "training_submit", "training_review", "leads"])
def test_pages_require_login(client, name):
    response = client.get(reverse(f"dashboard:{name}"))
    assert response.status_code == 302 and "/accounts/login/" in response["Location"]


@pytest.mark.parametrize(
    ("role", "submit", "review"),
    [
        ("admin", 200, 200),
        ("manager", 200, 200),
        ("operator", 200, 403),
        ("viewer", 403, 403),
    ],
)
def test_submit_and_review_pages_by_role(make_user, login, role, submit, review):
    client = login(make_user(role))
    assert client.get(reverse("dashboard:training_submit")).status_code == submit
    assert client.get(reverse("dashboard:training_review")).status_code == review


def test_training_home_shows_totals_and_active_prompt(login, viewer, operator, prompt_version):
    TrainingExampleFactory(submitted_by=operator, example_type="good")
    TrainingExampleFactory(submitted_by=operator, example_type="correction", expected_response="x")
    TrainingExampleFactory(
        submitted_by=operator,
        example_type="bad",
        status="approved",
        decided_by=operator,
        decided_at=prompt_version.created_at,
    )
    # 8 conversations answered by the version, 2 of them qualified (the facts the figures are counted from).
    now = timezone.now()
    for number in range(8):
        PromptVersionConversation.objects.create(
            prompt_version=prompt_version,
            conversation=ConversationFactory(),
            first_reply_at=now,
            last_reply_at=now,
            qualified_at=now if number < 2 else None,
        )
    response = login(viewer).get(reverse("dashboard:training_home"))
    stats = response.context["stats"]
    assert stats["total"] == 3 and stats["pending"] == 2 and stats["this_week"] == 3
    html = response.content.decode()
    assert f"v{prompt_version.version}" in html and "25% success" in html
    assert 'data-testid="type-correction">1<' in html and 'data-testid="status-approved">1<' in html


def test_flow_through_pages_flag_reply_from_lead_page_then_review(
    login, make_user, operator, manager, make_conversation
):
    conversation, replies = make_conversation(2)
    lead = conversation.lead
    client = login(operator)
    lead_page = client.get(reverse("dashboard:lead_detail", args=[lead.pk])).content.decode()
    link = f"/dashboard/training/submit/?lead={lead.pk}&amp;message={replies[1].pk}"
    assert link in lead_page

    page = client.get(f"/dashboard/training/submit/?lead={lead.pk}&message={replies[1].pk}")
    assert page.context["selected"].pk == replies[1].pk
    html = page.content.decode()
    assert "Lead question 1" in html and f'value="{replies[1].pk}"' in html

    response = client.post(
        reverse("dashboard:training_submit"),
        {
            "mode": "conversation",
            "conv-lead": lead.pk,
            "conv-message_id": replies[1].pk,
            "conv-example_type": "bad",
            "conv-feedback": "Too pushy",
        },
        follow=True,
    )
    # replies[1] is the conversation's last reply: back to the lead's page, at that reply.
    assert response.redirect_chain == [(f"/dashboard/leads/{lead.pk}/#message-{replies[1].pk}", 302)]
    assert SUBMITTED in response.content.decode()
    example = TrainingExample.objects.get()
    assert (example.user_message, example.ai_response) == ("Lead question 1", "Agent answer 1")
    assert example.conversation == conversation and example.message == replies[1]

    # The manager sees it in the queue, with its conversation excerpt, and approves it in place.
    client = login(manager)
    queue = client.get(reverse("dashboard:training_review"))
    assert [e.pk for e in queue.context["examples"]] == [example.pk]
    assert [m.text for m in queue.context["examples"][0].excerpt] == [
        "Lead question 0",
        "Agent answer 0",
        "Lead question 1",
        "Agent answer 1",
    ]
    response = client.post(
        reverse("dashboard:training_review"),
        {"action": "approve", "ids": [example.pk], "note": "ok"},
        follow=True,
    )
    assert "Approved 1 example." in response.content.decode()
    example.refresh_from_db()
    assert example.status == ExampleStatus.APPROVED and example.decided_by == manager
    assert Notification.objects.filter(recipient=operator, verb="training.approved").exists()

    # Approving again through the page is reported, not applied twice.
    response = client.post(
        reverse("dashboard:training_review"), {"action": "reject", "ids": [example.pk]}, follow=True
    )
    assert "Skipped #" in response.content.decode()
    example.refresh_from_db()
    assert example.status == ExampleStatus.APPROVED


def test_manual_tab_submit_and_bad_inputs(login, operator):
    client = login(operator)
    url = reverse("dashboard:training_submit")
    base = {
        "mode": "manual",
        "manual-user_message": "Hi",
        "manual-ai_response": "Hello!",
        "manual-example_type": "correction",
        "manual-feedback": "Too short",
        "manual-expected_response": "",
    }
    response = client.post(url, base)
    assert response.status_code == 200
    assert response.context["tab"] == "manual"
    assert "expected_response" in response.context["manual_form"].errors
    assert "A correction needs the expected response." in response.content.decode()

    response = client.post(
        url, {**base, "manual-feedback": "", "manual-expected_response": "Hi! How can I help?"}
    )
    assert "feedback" in response.context["manual_form"].errors
    assert not TrainingExample.objects.exists()

    response = client.post(url, {**base, "manual-expected_response": "Hi! How can I help?"}, follow=True)
    assert response.redirect_chain[-1][0] == "/dashboard/training/"
    assert SUBMITTED in response.content.decode()
    assert TrainingExample.objects.get().submitted_by == operator


def test_conversation_tab_requires_a_picked_reply(login, operator, make_conversation):
    conversation, replies = make_conversation(1)
    client = login(operator)
    response = client.post(
        reverse("dashboard:training_submit"),
        {
            "mode": "conversation",
            "conv-lead": conversation.lead_id,
            "conv-example_type": "good",
            "conv-feedback": "x",
        },
    )
    assert "message_id" in response.context["conversation_form"].errors
    lead_message = replies[0].in_reply_to
    response = client.post(
        reverse("dashboard:training_submit"),
        {
            "mode": "conversation",
            "conv-lead": conversation.lead_id,
            "conv-message_id": lead_message.pk,
            "conv-example_type": "good",
            "conv-feedback": "x",
        },
    )
    assert "message_id" in response.context["conversation_form"].errors
    other = LeadFactory()
    response = client.post(
        reverse("dashboard:training_submit"),
        {
            "mode": "conversation",
            "conv-lead": other.pk,
            "conv-message_id": replies[0].pk,
            "conv-example_type": "good",
            "conv-feedback": "x",
        },
    )
    assert "message_id" in response.context["conversation_form"].errors
    assert not TrainingExample.objects.exists()


def test_lead_without_messages_points_to_manual_tab(login, operator):
    lead = LeadFactory(first_name="Quiet", last_name="Lead")
    html = login(operator).get(f"/dashboard/training/submit/?lead={lead.pk}").content.decode()
    assert 'data-testid="no-conversation"' in html
    assert 'href="?tab=manual">Manual example</a>' in html


def test_lead_text_is_escaped(login, operator, make_conversation):
    conversation, replies = make_conversation(1)
    replies[0].in_reply_to.text = '<script>alert("x")</script>'
    replies[0].in_reply_to.save(update_fields=["text"])
    client = login(operator)
    for url in (
        f"/dashboard/training/submit/?lead={conversation.lead_id}&message={replies[0].pk}",
        f"/dashboard/leads/{conversation.lead_id}/",
    ):
        html = client.get(url).content.decode()
        assert "<script>alert" not in html
        assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;" in html


def test_review_queue_order_bulk_and_reopen(login, manager, operator):
    newer = TrainingExampleFactory(submitted_by=operator)
    older = TrainingExampleFactory(submitted_by=operator)
    TrainingExample.objects.filter(pk=older.pk).update(created_at=newer.created_at.replace(year=2025))
    decided = TrainingExampleFactory(
        submitted_by=operator, status="rejected", decided_by=manager, decided_at=newer.created_at
    )
    TrainingExample.objects.filter(pk=decided.pk).update(created_at=newer.created_at.replace(year=2024))
    client = login(manager)
    every = client.get(reverse("dashboard:training_review"), {"status": "all"}).context["examples"]
    assert [e.pk for e in every] == [older.pk, newer.pk, decided.pk]
    # Pending only by default (issue #18).
    pending_only = client.get(reverse("dashboard:training_review")).context["examples"]
    assert [e.pk for e in pending_only] == [older.pk, newer.pk]

    client.post(
        reverse("dashboard:training_review"),
        {"action": "reject", "ids": [older.pk, newer.pk], "note": "bulk"},
    )
    assert set(TrainingExample.objects.values_list("status", flat=True)) == {"rejected"}
    assert set(
        TrainingExample.objects.filter(pk__in=[older.pk, newer.pk]).values_list("review_note", flat=True)
    ) == {"bulk"}
    client.post(reverse("dashboard:training_review"), {"action": "reopen", "ids": [decided.pk]})
    decided.refresh_from_db()
    assert decided.status == "pending" and decided.decided_at is None


def test_operator_cannot_post_to_review(login, operator):
    example = TrainingExampleFactory(submitted_by=operator)
    response = login(operator).post(
        reverse("dashboard:training_review"), {"action": "approve", "ids": [example.pk]}
    )
    assert response.status_code == 403
    example.refresh_from_db()
    assert example.status == "pending"


def test_submitter_deletes_own_pending_example_from_training_page(login, make_user, operator):
    example = TrainingExampleFactory(submitted_by=operator)
    other = make_user("operator", username="op2")
    assert (
        login(other).post(reverse("dashboard:training_example_delete", args=[example.pk])).status_code == 403
    )
    html = login(operator).get(reverse("dashboard:training_home")).content.decode()
    assert reverse("dashboard:training_example_delete", args=[example.pk]) in html
    login(operator).post(reverse("dashboard:training_example_delete", args=[example.pk]))
    assert not TrainingExample.objects.exists()
