"""The conversation view: reply through ManyChat, delivery states, notes, assign, take over, hand back."""

import pytest
from django.urls import reverse

from agent.inbox import services
from leads.models import Activity, DeliveryStatus, Lead, Message, MessageRole, Note
from tests.factories import LeadFactory
from training.models import CandidateStatus, CorrectionCandidate, ExampleStatus, TrainingExample

pytestmark = pytest.mark.django_db


@pytest.fixture
def action(django_capture_on_commit_callbacks):
    """POST one conversation action, running what it queued on commit (the send, the tag removal)."""

    def post(client, lead, name, **data):
        with django_capture_on_commit_callbacks(execute=True):
            return client.post(reverse("dashboard:inbox_action", args=[lead.pk, name]), data)

    return post


def test_reply_is_stored_and_sent_through_send_content(
    action, client, operator, lead_with_reply, fake_manychat
):
    lead, _, _ = lead_with_reply
    client.force_login(operator)
    response = action(client, lead, "send", text="Hi Sofia, Lena here. I'll sort the refund today.")
    assert response.status_code == 302
    sent = fake_manychat.sent()
    assert len(sent) == 1
    assert str(sent[0]["subscriber_id"]) == lead.manychat_subscriber_id
    assert fake_manychat.sent_texts() == ["Hi Sofia, Lena here. I'll sort the refund today."]
    message = Message.objects.get(role=MessageRole.OPERATOR)
    assert (message.sent_by, message.delivery_status, message.error) == (operator, DeliveryStatus.SENT, "")
    lead.refresh_from_db()
    assert lead.waiting_since is None
    assert (lead.taken_over_by, lead.bot_paused, lead.assignee) == (operator, True, operator)
    page = client.get(reverse("dashboard:inbox_conversation", args=[lead.pk])).content.decode()
    assert 'class="delivery delivery-sent"' in page


def test_reply_outside_the_24_hour_window_says_so(action, client, operator, lead_with_reply, fake_manychat):
    lead, _, _ = lead_with_reply
    fake_manychat.enqueue(fake_manychat.window_closed())
    client.force_login(operator)
    action(client, lead, "send", text="Are you still there?")
    message = Message.objects.get(role=MessageRole.OPERATOR)
    assert message.delivery_status == DeliveryStatus.UNDELIVERABLE
    assert message.error.startswith(services.WINDOW_CLOSED_PREFIX)
    page = client.get(reverse("dashboard:inbox_conversation", args=[lead.pk])).content.decode()
    assert "not sent: outside the 24-hour window" in page


def test_reply_refused_by_manychat_shows_the_reason(action, client, operator, lead_with_reply, fake_manychat):
    lead, _, _ = lead_with_reply
    fake_manychat.enqueue(fake_manychat.error(400, "Permission denied to send", code=3021))
    client.force_login(operator)
    action(client, lead, "send", text="Hello")
    message = Message.objects.get(role=MessageRole.OPERATOR)
    assert message.delivery_status == DeliveryStatus.UNDELIVERABLE
    assert "Permission denied to send" in message.error
    page = client.get(reverse("dashboard:inbox_thread", args=[lead.pk])).content.decode()
    assert "failed: HTTP 400" in page and "Permission denied to send" in page


@pytest.mark.parametrize("text", ["", "   ", "x" * 4001])
def test_empty_or_long_reply_is_refused_and_nothing_is_written(
    api, operator, lead_with_reply, fake_manychat, text
):
    lead, _, _ = lead_with_reply
    response = api(operator).post(f"/api/inbox/leads/{lead.pk}/messages/", {"text": text}, format="json")
    assert response.status_code == 400
    assert "text" in response.data
    assert not Message.objects.filter(role=MessageRole.OPERATOR).exists()
    assert fake_manychat.sent() == []


def test_a_note_is_kept_and_never_sent(action, client, operator, lead_with_reply, fake_manychat):
    lead, _, _ = lead_with_reply
    client.force_login(operator)
    action(client, lead, "note", text="She ordered twice; refund the second one.")
    assert Note.objects.get().text == "She ordered twice; refund the second one."
    assert fake_manychat.calls == 0
    assert not Message.objects.filter(role=MessageRole.OPERATOR).exists()
    thread = client.get(reverse("dashboard:inbox_thread", args=[lead.pk])).content.decode()
    assert "Internal note" in thread and "refund the second one" in thread


def test_assign_to_me_and_to_someone(action, client, operator, manager, lead_with_reply):
    lead, _, _ = lead_with_reply
    client.force_login(operator)
    action(client, lead, "assign", assignee_id="me")
    lead.refresh_from_db()
    assert lead.assignee == operator
    action(client, lead, "assign", assignee_id=str(manager.pk))
    lead.refresh_from_db()
    assert lead.assignee == manager
    assert Activity.objects.filter(lead=lead, verb="lead.assigned").count() == 2
    action(client, lead, "assign", assignee_id="")
    lead.refresh_from_db()
    assert lead.assignee is None


def test_assigning_a_viewer_is_refused(api, operator, viewer, lead_with_reply):
    lead, _, _ = lead_with_reply
    response = api(operator).post(
        f"/api/inbox/leads/{lead.pk}/assign/", {"assignee_id": viewer.pk}, format="json"
    )
    assert response.status_code == 400
    assert "assignee_id" in response.data


def test_take_over_silences_the_bot_and_hand_back_removes_the_tag(
    action, client, operator, fake_manychat, fake_openai, prompt_version, webhook
):
    webhook("5551", "Hello there")
    assert fake_openai.calls == 1
    lead = Lead.objects.get(manychat_subscriber_id="5551")
    client.force_login(operator)
    action(client, lead, "take_over")
    lead.refresh_from_db()
    assert lead.taken_over_by == operator and lead.bot_paused

    response = webhook("5551", "Is anyone there?")
    assert response.json()["content"]["messages"] == []
    assert fake_openai.calls == 1  # the bot stayed silent

    action(client, lead, "hand_back")
    lead.refresh_from_db()
    assert (lead.taken_over_by, lead.taken_over_at, lead.bot_paused, lead.needs_human) == (
        None,
        None,
        False,
        False,
    )
    removals = [r.json() for r in fake_manychat.requests if r.path.endswith("/fb/subscriber/removeTagByName")]
    assert removals == [{"subscriber_id": 5551, "tag_name": "needs_human"}]

    webhook("5551", "Thanks, one more question")
    assert fake_openai.calls == 2  # the bot answers again


def test_idle_timeout_hands_a_lead_back(operator, lead_with_reply, fake_manychat):
    from datetime import timedelta

    from django.utils import timezone

    lead, _, _ = lead_with_reply
    services.inbox_take_over(lead=lead, user=operator)
    assert services.inbox_idle_hand_back(minutes=0) == []  # off by default
    assert services.inbox_idle_hand_back(minutes=30) == []  # taken over just now
    later = timezone.now() + timedelta(minutes=31)
    assert services.inbox_idle_hand_back(minutes=30, now=later) == [lead.pk]
    lead.refresh_from_db()
    assert lead.taken_over_at is None and not lead.bot_paused


@pytest.mark.parametrize("name", ["send", "note", "assign", "take_over", "hand_back"])
def test_a_viewer_may_not_act(action, client, viewer, lead_with_reply, name):
    lead, _, _ = lead_with_reply
    client.force_login(viewer)
    response = action(client, lead, name, text="hi", assignee_id="me")
    assert response.status_code == 403
    assert not Message.objects.filter(role=MessageRole.OPERATOR).exists()
    assert not Note.objects.exists()


def test_the_first_reply_after_an_agent_reply_becomes_a_correction_candidate(
    action, client, operator, manager, lead_with_reply, fake_manychat
):
    lead, asked, reply = lead_with_reply
    client.force_login(operator)
    action(client, lead, "send", text="Refund approved, it lands in 3 days.")
    action(client, lead, "send", text="Anything else?")  # a second human message corrects nothing new
    candidate = CorrectionCandidate.objects.get()
    assert (candidate.user_message, candidate.ai_response, candidate.expected_response) == (
        asked.text,
        reply.text,
        "Refund approved, it lands in 3 days.",
    )
    page = client.get(reverse("dashboard:inbox_conversation", args=[lead.pk])).content.decode()
    assert f'data-candidate-id="{candidate.pk}"' in page

    client.post(
        reverse("dashboard:inbox_candidate_action", args=[candidate.pk, "submit"]),
        {
            "feedback": "Promise a date instead of deflecting",
            "expected_response": candidate.expected_response,
        },
    )
    candidate.refresh_from_db()
    example = TrainingExample.objects.get()
    assert candidate.status == CandidateStatus.SUBMITTED and candidate.training_example == example
    assert (example.example_type, example.status, example.message) == (
        "correction",
        ExampleStatus.PENDING,
        reply,
    )
    assert example.metadata["source"] == "operator_reply"
    client.force_login(manager)
    # The review queue knows where it came from: it is listed under the operator-reply source only.
    by_source = reverse("dashboard:training_review") + "?source=operator_reply"
    assert f'id="example-{example.pk}"' in client.get(by_source).content.decode()
    manual = reverse("dashboard:training_review") + "?source=manual"
    assert f'id="example-{example.pk}"' not in client.get(manual).content.decode()

    # Submitting twice is a conflict, and nothing is written the second time.
    client.force_login(operator)
    again = client.post(
        reverse("dashboard:inbox_candidate_action", args=[candidate.pk, "submit"]), {"feedback": "again"}
    )
    assert again.status_code == 302
    assert TrainingExample.objects.count() == 1


def test_a_candidate_can_be_dismissed(
    django_capture_on_commit_callbacks, api, operator, lead_with_reply, fake_manychat
):
    lead, _, _ = lead_with_reply
    with django_capture_on_commit_callbacks(execute=True):
        services.inbox_message_send(lead=lead, user=operator, text="Let me check.")
    candidate = CorrectionCandidate.objects.get()
    response = api(operator).post(f"/api/inbox/candidates/{candidate.pk}/dismiss/")
    assert response.status_code == 200 and response.data["status"] == "dismissed"
    assert api(operator).post(f"/api/inbox/candidates/{candidate.pk}/dismiss/").status_code == 409
    assert not TrainingExample.objects.exists()


def test_no_candidate_without_an_agent_reply_before(
    django_capture_on_commit_callbacks, operator, fake_manychat
):
    lead = LeadFactory()
    with django_capture_on_commit_callbacks(execute=True):
        services.inbox_message_send(lead=lead, user=operator, text="Hi! Following up on your order.")
    assert not CorrectionCandidate.objects.exists()
    assert Message.objects.get(role=MessageRole.OPERATOR).delivery_status == DeliveryStatus.SENT


def test_conversation_page_query_count_does_not_grow(
    client, operator, lead_with_reply, django_assert_num_queries
):
    from tests.factories import AgentMessageFactory, MessageFactory

    lead, asked, _ = lead_with_reply
    client.force_login(operator)
    counts = []
    for _ in range(2):
        with django_assert_num_queries(14) as captured:
            assert client.get(reverse("dashboard:inbox_conversation", args=[lead.pk])).status_code == 200
        counts.append(len(captured.captured_queries))
        conversation = asked.conversation
        for _ in range(10):
            m = MessageFactory(conversation=conversation)
            AgentMessageFactory(conversation=conversation, in_reply_to=m)
            Note.objects.create(lead=lead, author=operator, text="n")
    assert counts[0] == counts[1]
