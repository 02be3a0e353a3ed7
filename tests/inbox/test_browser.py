"""The inbox walk in headless Chromium: handoff → needs a person → take over → reply through ManyChat →
the bot stays silent → hand back → the bot answers; the correction candidate reaches the review queue."""

import os
import threading
import time
from pathlib import Path

import httpx
import pytest
from django.utils import timezone

from leads.models import DeliveryStatus, Lead, Message, MessageRole
from tests.e2e.conftest import login, new_page  # noqa: F401  (fixtures)
from tests.factories import LeadFactory
from tests.inbox.conftest import SECRET
from training.models import CandidateStatus, CorrectionCandidate, TrainingExample

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

# Screenshots for people to look at (INBOX_SHOTS_DIR=/tmp/shots-h5 while developing).
SHOTS = Path(
    os.environ.get("INBOX_SHOTS_DIR") or Path(__file__).resolve().parents[2] / "artifacts" / "screenshots"
)
HANDOFF = {
    "reply": "Of course, I'm getting a person for you.",
    "qualified": False,
    "lead_fields": {},
    "handoff": True,
    "handoff_reason": "The lead asked for a person.",
}


def post_webhook(live_server, subscriber_id: str, text: str) -> dict:
    response = httpx.post(
        f"{live_server.url}/webhooks/manychat/",
        json={"subscriber_id": subscriber_id, "text": text, "channel": "instagram", "first_name": "Lena"},
        headers={"X-Webhook-Secret": SECRET},
        timeout=20,
    )
    assert response.status_code == 200, response.text
    return response.json()


def quiet(page):
    """Hold the page's live updates while the test writes (SQLite's in-memory test database locks tables)."""
    page.evaluate("document.getElementById('thread').dataset.paused = '1'")
    # A selector wait, not wait_for_function: the page's CSP forbids the eval that one needs.
    page.wait_for_selector("#thread:not([data-busy])", state="attached")


def resume(page):
    page.evaluate("delete document.getElementById('thread').dataset.paused")


def texts(body: dict) -> list[str]:
    return [m["text"] for m in body["content"]["messages"]]


def shoot(page, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    for width in (1366, 390):
        page.set_viewport_size({"width": width, "height": 900})
        page.screenshot(path=str(SHOTS / f"{name}-{width}.png"), full_page=True)
    page.set_viewport_size({"width": 1366, "height": 900})


def test_the_inbox_walk(
    live_server,
    new_page,  # noqa: F811
    settings,
    make_user,
    prompt_version,
    fake_openai,
    fake_manychat,
    request,  # noqa: F811
):
    settings.INBOX_POLL_SECONDS = 1.0
    settings.AGENT_SHADOW_MODE = False  # the bot stays silent *and* idle here (test_the_draft_walk: shadows)
    operator = make_user("operator", password="demo-pass-2026")
    manager = make_user("manager", password="demo-pass-2026")

    # A lead asks for a person: the agent hands it off.
    fake_openai.enqueue(fake_openai.completion(HANDOFF))
    assert texts(post_webhook(live_server, "424242", "Can I talk to a real person please?")) == [
        HANDOFF["reply"]
    ]
    lead = Lead.objects.get(manychat_subscriber_id="424242")
    assert lead.needs_human and lead.waiting_since is not None
    LeadFactory(first_name="Later", last_name="Lead", waiting_since=timezone.now(), needs_human=True)
    model_calls = fake_openai.calls

    # It appears first in "needs a person", with its waiting time.
    page = new_page("operator")
    login(page, operator.username)
    page.goto("/dashboard/inbox/")
    first = page.locator("[data-testid=inbox-rows] tbody tr").first
    assert first.get_attribute("data-lead-id") == str(lead.pk)
    assert "ago" in first.locator("[data-testid=waiting]").inner_text() or "now" in first.inner_text()
    assert page.locator("[data-testid=count-needs_person]").inner_text() == "2"
    shoot(page, "inbox")

    # The operator opens it and takes it.
    with page.expect_navigation():
        first.locator("a").first.click()
    with page.expect_navigation():
        page.click("[data-testid=take-over]")
    assert "handles it" in page.locator("[data-testid=bot-state]").inner_text()

    # ...and replies with Ctrl+Enter: ManyChat receives exactly that text for that subscriber.
    reply = "Hi Lena, I'm Sam from the team. What can I do for you?"
    page.fill("#id_text", reply)
    with page.expect_navigation():
        page.press("#id_text", "Control+Enter")
    assert fake_manychat.wait_for_calls(1)
    sent = fake_manychat.sent()
    assert [
        (str(body["subscriber_id"]), body["data"]["content"]["messages"][0]["text"]) for body in sent
    ] == [("424242", reply)]
    assert page.locator(".bubble-operator [data-testid=delivery]").last.inner_text() == "sent"

    # The lead writes again: the bot stays silent, and the message appears without a reload.
    quiet(page)
    assert texts(post_webhook(live_server, "424242", "I want to change my booking to Friday")) == []
    resume(page)
    assert fake_openai.calls == model_calls
    page.locator("#thread").get_by_text("I want to change my booking to Friday").wait_for(timeout=8000)
    shoot(page, "conversation")

    # The correction candidate from the operator's reply goes to review in one click.
    candidate = CorrectionCandidate.objects.get()
    assert candidate.expected_response == reply
    form = page.locator(f"[data-candidate-id='{candidate.pk}']")
    form.locator("input[name=feedback]").fill("Introduce yourself and ask what they need")
    with page.expect_navigation():
        form.locator("[data-testid=candidate-submit]").click()
    assert "sent to the review queue" in page.locator(".flashes").inner_text()
    candidate.refresh_from_db()
    assert candidate.status == CandidateStatus.SUBMITTED

    # Hand back: the handoff tag is removed and the next message is answered by the bot.
    with page.expect_navigation():
        page.click("[data-testid=hand-back]")
    assert "Bot answering" in page.locator("[data-testid=bot-state]").inner_text()
    assert any(r.path.endswith("/fb/subscriber/removeTagByName") for r in fake_manychat.requests)
    quiet(page)
    assert texts(post_webhook(live_server, "424242", "Thanks! One more question about prices")) != []
    resume(page)
    assert fake_openai.calls == model_calls + 1

    # A slow agent reply that finishes after a person took over is never sent.
    fake_openai.enqueue(
        fake_openai.completion({"reply": "Saturday works, see you!", "qualified": False}, delay=3)
    )
    answered: dict = {}
    calls = fake_openai.calls
    writer = threading.Thread(
        target=lambda: answered.update(post_webhook(live_server, "424242", "Can I come on Saturday instead?"))
    )
    writer.start()
    deadline = time.monotonic() + 10
    while fake_openai.calls == calls and time.monotonic() < deadline:
        time.sleep(0.05)
    assert fake_openai.calls == calls + 1  # the model is writing
    page.goto(f"/dashboard/inbox/{lead.pk}/")
    with page.expect_navigation():
        page.click("[data-testid=take-over]")
    quiet(page)
    writer.join(15)
    assert texts(answered) == []
    late = Message.objects.get(role=MessageRole.AGENT, text="Saturday works, see you!")
    assert late.delivery_status == DeliveryStatus.SUPERSEDED
    assert "Saturday works, see you!" not in fake_manychat.sent_texts()
    resume(page)
    page.reload()
    assert "not sent: a person took over" in page.locator(f"#message-{late.pk}").inner_text().lower()

    # The review queue shows the correction with its source.
    review = new_page("manager")
    login(review, manager.username)
    review.goto("/dashboard/training/review/?source=operator_reply")
    example = TrainingExample.objects.get()
    card = review.locator(f"#example-{example.pk}")
    assert card.is_visible()
    assert "Introduce yourself and ask what they need" in card.inner_text()
    assert example.metadata["source"] == "operator_reply"

    operator_message = Message.objects.get(role=MessageRole.OPERATOR)
    assert operator_message.delivery_status == DeliveryStatus.SENT
    # A navigation cancels a poll in flight (net::ERR_ABORTED): the browser's doing, not an error.
    problems = [
        f"[{w.label}] {p}"
        for w in request.node.e2e_watches
        for p in w.problems
        if not ("ERR_ABORTED" in p and ("/thread/" in p or "/api/notifications/" in p))
    ]
    assert problems == []


def test_the_draft_walk(
    live_server,
    new_page,  # noqa: F811
    settings,
    make_user,
    prompt_version,
    fake_openai,
    fake_manychat,
    request,  # noqa: F811
):
    """Draft mode: the lead writes → the draft appears in the conversation view → the operator edits it and
    sends it with Ctrl+Enter → ManyChat receives exactly the edited text → a correction candidate holds the
    draft as the agent's answer."""
    settings.INBOX_POLL_SECONDS = 1.0
    settings.AGENT_DRAFT_MODE = False  # the team's default is off: this lead's own setting turns drafts on
    settings.AGENT_SHADOW_MODE = False
    operator = make_user("operator", password="demo-pass-2026")
    lead = LeadFactory(manychat_subscriber_id="515151", first_name="Marta", draft_mode=True)
    drafted = "Our evening classes run until 9 pm, Monday to Friday. Want me to save you a spot?"
    fake_openai.enqueue(fake_openai.completion({"reply": drafted, "qualified": False}))

    assert texts(post_webhook(live_server, "515151", "Do you have classes after work?")) == []
    draft = Message.objects.get(role=MessageRole.AGENT)
    assert draft.delivery_status == DeliveryStatus.DRAFT and draft.prompt_version_id == prompt_version.pk
    assert fake_manychat.calls == 0

    page = new_page("operator")
    login(page, operator.username)
    page.goto(f"/dashboard/inbox/{lead.pk}/")
    editor = page.locator(f"#draft-{draft.pk}")
    assert editor.input_value() == drafted
    assert "Co-pilot" in page.locator("[data-testid=draft-mode]").inner_text()
    shoot(page, "conversation-draft")

    edited = (
        "Yes! Evening classes run until 9 pm on weekdays, and your first one is free. Shall I book you in?"
    )
    editor.fill(edited)
    with page.expect_navigation():
        editor.press("Control+Enter")
    assert fake_manychat.wait_for_calls(1)
    sent = fake_manychat.sent()
    assert [
        (str(body["subscriber_id"]), body["data"]["content"]["messages"][0]["text"]) for body in sent
    ] == [("515151", edited)]
    assert "Edited draft sent" in page.locator(".flashes").inner_text()
    assert page.locator(".bubble-operator [data-testid=delivery]").last.inner_text() == "sent"
    assert "edited before sending" in page.locator(f"#message-{draft.pk}").inner_text()

    candidate = CorrectionCandidate.objects.get()
    assert candidate.agent_message_id == draft.pk
    assert (candidate.user_message, candidate.ai_response, candidate.expected_response) == (
        "Do you have classes after work?",
        drafted,
        edited,
    )
    assert page.locator(f"[data-candidate-id='{candidate.pk}']").is_visible()
    problems = [
        f"[{w.label}] {p}"
        for w in request.node.e2e_watches
        for p in w.problems
        if not ("ERR_ABORTED" in p and ("/thread/" in p or "/api/notifications/" in p))
    ]
    assert problems == []
