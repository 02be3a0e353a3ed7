"""Draft mode (co-pilot) and shadow mode: the agent writes, a person sends, edits or discards; while a person
handles a lead the agent still writes what it would have said, and nothing is sent."""

import threading

import pytest
from django.db import connection

from agent.inbox import drafts
from config.errors import Conflict, NotFound
from leads.models import DeliveryStatus, Lead, Message, MessageRole, Notification
from tests.factories import LeadFactory
from training.models import CorrectionCandidate

pytestmark = pytest.mark.django_db

DRAFTED = "Our coaching is 90 euros a month. Shall I book you a free intro call?"


def _draft_for(webhook, subscriber_id: str, text: str = "How much is the coaching?") -> Message:
    response = webhook(subscriber_id, text)
    assert response.status_code == 200
    assert response.json()["content"]["messages"] == []  # a valid, empty Dynamic Block: nothing sent
    return Message.objects.get(role=MessageRole.AGENT, in_reply_to__text=text)


@pytest.mark.parametrize(
    ("team_default", "lead_setting", "drafted"),
    [(True, None, True), (False, True, True), (True, False, False), (False, None, False)],
)
def test_the_lead_setting_overrides_the_team_default(
    webhook,
    settings,
    operator,
    fake_openai,
    fake_manychat,
    prompt_version,
    team_default,
    lead_setting,
    drafted,
):
    settings.AGENT_DRAFT_MODE = team_default
    fake_openai.reply_with({"reply": DRAFTED, "qualified": False})
    LeadFactory(manychat_subscriber_id="9100", draft_mode=lead_setting)
    response = webhook("9100", "How much is the coaching?")
    body = [m["text"] for m in response.json()["content"]["messages"]]
    reply = Message.objects.get(role=MessageRole.AGENT)
    lead = Lead.objects.get(manychat_subscriber_id="9100")
    if drafted:
        assert body == []
        assert reply.delivery_status == DeliveryStatus.DRAFT
        assert reply.prompt_version_id == prompt_version.pk  # stamped with the version that wrote it
        assert lead.waiting_since is not None  # it waits for a person in the inbox, who is told once
        assert (
            Notification.objects.filter(verb="inbox.draft_waiting", target_object_id=str(lead.pk)).count()
            == 1
        )
    else:
        assert body == [DRAFTED]
        assert reply.delivery_status != DeliveryStatus.DRAFT
    assert fake_manychat.calls == 0


def test_send_as_written_goes_out_through_send_content_once(
    webhook, operator, fake_openai, fake_manychat, prompt_version, django_capture_on_commit_callbacks
):
    fake_openai.reply_with({"reply": DRAFTED, "qualified": False})
    lead = LeadFactory(manychat_subscriber_id="9101", draft_mode=True)
    draft = _draft_for(webhook, "9101")
    with django_capture_on_commit_callbacks(execute=True):
        sent = drafts.inbox_draft_send(draft_id=draft.pk, user=operator, text=DRAFTED, lead=lead)
    assert sent.pk == draft.pk  # unchanged text: the agent's own reply goes out
    draft.refresh_from_db()
    assert draft.delivery_status == DeliveryStatus.SENT
    assert fake_manychat.sent_texts() == [DRAFTED]
    assert not CorrectionCandidate.objects.exists()  # nothing to correct
    lead.refresh_from_db()
    assert lead.waiting_since is None and lead.taken_over_at is None  # the bot keeps drafting
    with pytest.raises(Conflict), django_capture_on_commit_callbacks(execute=True):
        drafts.inbox_draft_send(draft_id=draft.pk, user=operator, lead=lead)  # a double click
    assert fake_manychat.sent_texts() == [DRAFTED]


def test_an_edited_draft_is_sent_as_a_persons_message_and_prefills_a_correction(
    webhook, operator, fake_openai, fake_manychat, prompt_version, django_capture_on_commit_callbacks
):
    fake_openai.reply_with({"reply": DRAFTED, "qualified": False})
    lead = LeadFactory(manychat_subscriber_id="9102", draft_mode=True)
    draft = _draft_for(webhook, "9102")
    edited = "It is 90 euros a month, and the first week is free. Want me to book you in?"
    with django_capture_on_commit_callbacks(execute=True):
        sent = drafts.inbox_draft_send(draft_id=draft.pk, user=operator, text=edited, lead=lead)
    assert sent.role == MessageRole.OPERATOR and sent.sent_by_id == operator.pk
    sent.refresh_from_db()
    assert sent.delivery_status == DeliveryStatus.SENT
    assert fake_manychat.sent_texts() == [edited]  # exactly the edited text, never the draft
    draft.refresh_from_db()
    assert draft.delivery_status == DeliveryStatus.DRAFT_EDITED
    candidate = CorrectionCandidate.objects.get()
    assert (candidate.agent_message_id, candidate.operator_message_id) == (draft.pk, sent.pk)
    assert candidate.user_message == "How much is the coaching?"
    assert candidate.ai_response == DRAFTED and candidate.expected_response == edited
    lead.refresh_from_db()
    assert lead.taken_over_at is None  # sending a draft does not silence the co-pilot


def test_discard_then_every_later_action_is_a_conflict(
    webhook, operator, fake_openai, fake_manychat, prompt_version
):
    lead = LeadFactory(manychat_subscriber_id="9103", draft_mode=True)
    draft = _draft_for(webhook, "9103")
    discarded = drafts.inbox_draft_discard(draft_id=draft.pk, user=operator, lead=lead)
    assert discarded.delivery_status == DeliveryStatus.DRAFT_DISCARDED
    with pytest.raises(Conflict):
        drafts.inbox_draft_discard(draft_id=draft.pk, user=operator, lead=lead)
    with pytest.raises(Conflict):
        drafts.inbox_draft_send(draft_id=draft.pk, user=operator, text="changed", lead=lead)
    assert fake_manychat.calls == 0
    assert not Message.objects.filter(role=MessageRole.OPERATOR).exists()


def test_a_draft_of_another_lead_is_not_found(webhook, operator, fake_openai, prompt_version):
    LeadFactory(manychat_subscriber_id="9104", draft_mode=True)
    draft = _draft_for(webhook, "9104")
    with pytest.raises(NotFound):
        drafts.inbox_draft_send(draft_id=draft.pk, user=operator, lead=LeadFactory())


def test_viewers_may_not_send_or_discard(webhook, viewer, fake_openai, prompt_version):
    from django.core.exceptions import PermissionDenied

    LeadFactory(manychat_subscriber_id="9105", draft_mode=True)
    draft = _draft_for(webhook, "9105")
    with pytest.raises(PermissionDenied):
        drafts.inbox_draft_send(draft_id=draft.pk, user=viewer)
    with pytest.raises(PermissionDenied):
        drafts.inbox_draft_discard(draft_id=draft.pk, user=viewer)
    draft.refresh_from_db()
    assert draft.delivery_status == DeliveryStatus.DRAFT


def test_drafts_never_sent_are_not_in_the_conversation_the_model_reads(
    webhook, operator, fake_openai, prompt_version
):
    lead = LeadFactory(manychat_subscriber_id="9106", draft_mode=True)
    fake_openai.reply_with({"reply": "A draft nobody sent", "qualified": False})
    draft = _draft_for(webhook, "9106", "first question")
    drafts.inbox_draft_discard(draft_id=draft.pk, user=operator, lead=lead)
    Lead.objects.filter(pk=lead.pk).update(draft_mode=False)
    fake_openai.reply_with({"reply": "The bot's answer", "qualified": False})
    webhook("9106", "second question")
    contents = [m["content"] for m in fake_openai.last_messages()[1:]]
    assert contents == ["first question", "second question"]


@pytest.mark.django_db(transaction=True)
def test_two_people_sending_one_draft_at_once_send_it_once(
    webhook, operator, manager, fake_openai, fake_manychat, prompt_version
):
    """Two sends race on one draft (two operators, or a double click on two workers): the row lock and the
    conditional UPDATE let exactly one through; the other gets a Conflict, and ManyChat one message."""
    if connection.vendor != "postgresql":
        pytest.skip("concurrent writers need PostgreSQL (SQLite's in-memory test database locks tables)")
    fake_openai.reply_with({"reply": DRAFTED, "qualified": False})
    lead = LeadFactory(manychat_subscriber_id="9107", draft_mode=True)
    draft = _draft_for(webhook, "9107")
    barrier = threading.Barrier(2)
    results: dict[str, str] = {}

    def send(who, text):
        try:
            barrier.wait(5)
            message = drafts.inbox_draft_send(draft_id=draft.pk, user=who, text=text, lead=lead)
            results[who.username] = f"sent {message.pk}"
        except Conflict as exc:
            results[who.username] = f"conflict: {exc.message}"
        finally:
            connection.close()

    threads = [
        threading.Thread(target=send, args=(operator, "Edited by the operator")),
        threading.Thread(target=send, args=(manager, None)),
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    outcomes = sorted(value.split(":")[0].split(" ")[0] for value in results.values())
    assert outcomes == ["conflict", "sent"], results
    fake_manychat.wait_for_calls(1, timeout=10)
    assert len(fake_manychat.sent_texts()) == 1
    draft.refresh_from_db()
    assert draft.delivery_status in (DeliveryStatus.SENT, DeliveryStatus.DRAFT_EDITED)


# --- Shadow mode ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("shadow_on", [True, False])
def test_shadow_mode_writes_what_the_bot_would_have_said_and_sends_nothing(
    webhook,
    operator,
    settings,
    fake_openai,
    fake_manychat,
    prompt_version,
    shadow_on,
    django_capture_on_commit_callbacks,
    monkeypatch,
):
    from agent.inbox import tasks
    from agent.inbox.services import inbox_take_over

    settings.AGENT_SHADOW_MODE = shadow_on
    # The task runs inline here (a background thread could not see this test's transaction).
    monkeypatch.setattr(drafts, "shadow_schedule", lambda *, message_id: tasks.write_shadow_draft(message_id))
    fake_openai.reply_with({"reply": "Hi Lena! The coaching is 90 euros a month.", "qualified": True})
    lead = LeadFactory(manychat_subscriber_id="9108")
    inbox_take_over(lead=lead, user=operator)
    response = webhook("9108", "How much?")
    assert response.json()["content"]["messages"] == []
    inbound = Message.objects.get(role=MessageRole.LEAD)
    assert inbound.delivery_status == DeliveryStatus.SKIPPED  # the bot stayed silent
    shadows = list(Message.objects.filter(role=MessageRole.AGENT))
    if shadow_on:
        assert [(m.text, m.delivery_status, m.in_reply_to_id) for m in shadows] == [
            ("Hi Lena! The coaching is 90 euros a month.", DeliveryStatus.SHADOW, inbound.pk)
        ]
        assert shadows[0].prompt_version_id == prompt_version.pk
        lead.refresh_from_db()
        assert lead.status == "new"  # a shadow changes nothing: not qualified by it
        with pytest.raises(Conflict):
            drafts.inbox_draft_send(draft_id=shadows[0].pk, user=operator, lead=lead)
        assert tasks.write_shadow_draft(inbound.pk) is None  # a repeated task adds nothing
    else:
        assert shadows == [] and fake_openai.calls == 0
    assert fake_manychat.calls == 0


def test_the_project_default_burst_window_is_three_seconds():
    """The tests run with the window at 0 (tests/conftest.py); production answers bursts by default."""
    import os
    import subprocess
    import sys

    env = {k: v for k, v in os.environ.items() if k != "AGENT_BURST_WINDOW_SECONDS"}
    env["DJANGO_DEBUG"] = "1"
    shown = subprocess.run(
        [sys.executable, "-c", "import config.settings as s; print(s.AGENT_BURST_WINDOW_SECONDS)"],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    assert shown.stdout.strip() == "3.0"


# --- The API and the conversation view -------------------------------------------------------------------


@pytest.fixture
def drafted(db, prompt_version):
    """A lead in draft mode with one waiting draft: (lead, the lead's message, the draft)."""
    from tests.factories import AgentMessageFactory, ConversationFactory, MessageFactory

    lead = LeadFactory(manychat_subscriber_id="9200", draft_mode=True)
    conversation = ConversationFactory(lead=lead)
    asked = MessageFactory(conversation=conversation, text="Do you have evening classes?")
    draft = AgentMessageFactory(
        conversation=conversation,
        in_reply_to=asked,
        prompt_version=prompt_version,
        text="Yes, every weekday until 9 pm.",
        delivery_status=DeliveryStatus.DRAFT,
    )
    return lead, asked, draft


def test_viewers_list_drafts_but_may_not_act_on_them(api, viewer, drafted):
    lead, _, draft = drafted
    client = api(viewer)
    listed = client.get(f"/api/inbox/leads/{lead.pk}/drafts/")
    assert listed.status_code == 200
    assert [(d["id"], d["kind"], d["status"]) for d in listed.data] == [(draft.pk, "draft", "draft")]
    assert listed.data[0]["lead_message"] == "Do you have evening classes?"
    assert listed.data[0]["prompt_version"] == draft.prompt_version.version
    base = f"/api/inbox/leads/{lead.pk}"
    assert client.post(f"{base}/drafts/{draft.pk}/send/", {}, format="json").status_code == 403
    assert client.post(f"{base}/drafts/{draft.pk}/discard/").status_code == 403
    assert client.post(f"{base}/draft-mode/", {"draft_mode": False}, format="json").status_code == 403
    draft.refresh_from_db()
    assert draft.delivery_status == DeliveryStatus.DRAFT


def test_operator_sends_an_edited_draft_through_the_api_once(
    api, operator, drafted, fake_manychat, django_capture_on_commit_callbacks
):
    lead, _, draft = drafted
    client = api(operator)
    url = f"/api/inbox/leads/{lead.pk}/drafts/{draft.pk}"
    with django_capture_on_commit_callbacks(execute=True):
        sent = client.post(f"{url}/send/", {"text": "Yes! Monday to Friday until 9 pm."}, format="json")
    assert sent.status_code == 201 and sent.data["role"] == "operator"
    assert fake_manychat.sent_texts() == ["Yes! Monday to Friday until 9 pm."]
    again = client.post(f"{url}/send/", {}, format="json")
    assert again.status_code == 409 and "already" in str(again.data)
    assert client.post(f"{url}/discard/").status_code == 409
    assert fake_manychat.sent_texts() == ["Yes! Monday to Friday until 9 pm."]
    assert client.get(f"/api/inbox/leads/{lead.pk}/drafts/", {"kind": "open"}).data == []
    everything = client.get(f"/api/inbox/leads/{lead.pk}/drafts/").data
    assert [d["status"] for d in everything] == ["draft_edited"]
    candidates = client.get("/api/inbox/candidates/", {"lead_id": lead.pk}).data
    assert [(c["ai_response"], c["expected_response"]) for c in candidates] == [
        ("Yes, every weekday until 9 pm.", "Yes! Monday to Friday until 9 pm.")
    ]


def test_operator_discards_a_draft_and_sets_draft_mode_through_the_api(api, operator, drafted, settings):
    settings.AGENT_DRAFT_MODE = False
    lead, _, draft = drafted
    client = api(operator)
    discarded = client.post(f"/api/inbox/leads/{lead.pk}/drafts/{draft.pk}/discard/")
    assert discarded.status_code == 200 and discarded.data["status"] == "draft_discarded"
    assert (
        client.post(f"/api/inbox/leads/{lead.pk}/drafts/999999/send/", {}, format="json").status_code == 404
    )
    mode = client.post(f"/api/inbox/leads/{lead.pk}/draft-mode/", {"draft_mode": None}, format="json")
    assert mode.status_code == 200 and mode.data == {
        "lead_id": lead.pk,
        "draft_mode": None,
        "effective": False,
    }
    bad = client.post(f"/api/inbox/leads/{lead.pk}/draft-mode/", {"draft_mode": "maybe"}, format="json")
    assert bad.status_code == 400 and "draft_mode" in bad.data
    lead.refresh_from_db()
    assert lead.draft_mode is None
    assert client.get(f"/api/inbox/leads/{lead.pk}/thread/").data["lead"]["draft_mode"] is None


def test_draft_operations_are_in_the_openapi_schema_with_their_409(api, admin_user_role):
    import json

    from django.urls import reverse

    schema = json.loads(api(admin_user_role).get(reverse("schema") + "?format=json").content)
    operations = {op["operationId"]: op for path in schema["paths"].values() for op in path.values()}
    assert {"inbox_drafts", "inbox_draft_send", "inbox_draft_discard", "inbox_draft_mode"} <= set(operations)
    assert "409" in operations["inbox_draft_send"]["responses"]
    assert "409" in operations["inbox_draft_discard"]["responses"]


def test_the_conversation_view_shows_drafts_and_sends_them(
    client,
    operator,
    drafted,
    fake_manychat,
    django_capture_on_commit_callbacks,
    django_assert_max_num_queries,
):
    from django.urls import reverse

    from tests.factories import AgentMessageFactory, MessageFactory

    lead, asked, draft = drafted
    client.force_login(operator)
    page = reverse("dashboard:inbox_conversation", args=[lead.pk])
    html = client.get(page).content.decode()
    assert 'data-testid="draft-editor"' in html and "Yes, every weekday until 9 pm." in html
    assert "Co-pilot: the agent writes drafts" in html

    # More drafts and shadow drafts cost no query more.
    with django_assert_max_num_queries(40) as before:
        client.get(page)
    for i in range(5):
        m = MessageFactory(conversation=asked.conversation, text=f"q{i}")
        AgentMessageFactory(
            conversation=asked.conversation, in_reply_to=m, delivery_status=DeliveryStatus.SHADOW
        )
    with django_assert_max_num_queries(len(before.captured_queries)):
        html = client.get(page).content.decode()
    assert html.count("Shadow draft") == 5

    action = reverse("dashboard:inbox_draft_action", args=[lead.pk, draft.pk, "send"])
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(action, {"text": draft.text})
    assert response.status_code == 302
    assert fake_manychat.sent_texts() == ["Yes, every weekday until 9 pm."]
    again = client.post(action, {"text": draft.text}, follow=True)
    assert "already sent" in again.content.decode()
    assert fake_manychat.sent_texts() == ["Yes, every weekday until 9 pm."]


def test_the_draft_mode_form_sets_the_lead(client, operator, viewer, drafted):
    from django.urls import reverse

    lead, _, _ = drafted
    url = reverse("dashboard:inbox_action", args=[lead.pk, "draft_mode"])
    client.force_login(viewer)
    assert client.post(url, {"draft_mode": "off"}).status_code == 403
    client.force_login(operator)
    client.post(url, {"draft_mode": "off"})
    lead.refresh_from_db()
    assert lead.draft_mode is False
    client.post(url, {"draft_mode": "nonsense"})
    lead.refresh_from_db()
    assert lead.draft_mode is False


def test_a_version_is_credited_for_a_draft_only_once_it_is_sent_as_written(
    operator, drafted, fake_manychat, django_capture_on_commit_callbacks
):
    from prompts.models import PromptVersionConversation
    from prompts.services import (
        prompt_figures_reconcile,
        prompt_version_record_qualification,
        prompt_version_record_reply,
    )

    lead, _, draft = drafted
    assert prompt_version_record_reply(message_id=draft.pk) is None
    prompt_figures_reconcile()
    assert prompt_version_record_qualification(lead_id=lead.pk, qualified_at=draft.created_at) is None
    assert not PromptVersionConversation.objects.exists()
    with django_capture_on_commit_callbacks(execute=True):
        drafts.inbox_draft_send(draft_id=draft.pk, user=operator, lead=lead)
    credited = PromptVersionConversation.objects.get()
    assert (credited.prompt_version_id, credited.conversation_id) == (
        draft.prompt_version_id,
        draft.conversation_id,
    )


def test_a_shadow_draft_is_never_credited(prompt_version):
    from prompts.models import PromptVersionConversation
    from prompts.services import prompt_figures_reconcile, prompt_version_record_qualification
    from tests.factories import AgentMessageFactory, ConversationFactory, MessageFactory

    lead = LeadFactory()
    asked = MessageFactory(conversation=ConversationFactory(lead=lead), text="price?")
    shadow = AgentMessageFactory(
        conversation=asked.conversation,
        in_reply_to=asked,
        prompt_version=prompt_version,
        delivery_status=DeliveryStatus.SHADOW,
    )
    prompt_figures_reconcile()
    # A person qualifies the lead they handle: the shadow draft did not do it.
    assert prompt_version_record_qualification(lead_id=lead.pk, qualified_at=shadow.created_at) is None
    assert not PromptVersionConversation.objects.exists()


@pytest.mark.parametrize("text", [None, "An edited answer"])
def test_the_conditional_update_has_the_last_word(
    operator, drafted, fake_manychat, monkeypatch, django_capture_on_commit_callbacks, text
):
    """Without a row lock (SQLite), a second sender may read the draft as still waiting: the UPDATE that
    moves it on matches no row, so nothing is sent twice and no person's message is stored."""
    from leads import assignment

    lead, _, draft = drafted
    with django_capture_on_commit_callbacks(execute=True):
        drafts.inbox_draft_send(draft_id=draft.pk, user=operator, lead=lead)
    stale = Message.objects.select_related("conversation__lead", "in_reply_to").get(pk=draft.pk)
    stale.delivery_status = DeliveryStatus.DRAFT  # what a reader without the lock saw
    monkeypatch.setattr(assignment, "draft_lock", lambda *, draft_id: stale)
    with pytest.raises(Conflict), django_capture_on_commit_callbacks(execute=True):
        drafts.inbox_draft_send(draft_id=draft.pk, user=operator, text=text, lead=lead)
    assert fake_manychat.sent_texts() == [draft.text]
    assert not Message.objects.filter(role=MessageRole.OPERATOR).exists()
