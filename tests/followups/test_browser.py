"""In headless Chromium, clean console, at 1366 px and 390 px: a conversation the scoring failed arrives in
the review queue with its failed check and turn, and the follow-up figures show on their page."""

import json
import os
import tempfile
from datetime import timedelta
from pathlib import Path

import pytest
from django.utils import timezone

from agent.followups import services as followup_services
from agent.scoring import services as scoring_services
from agent.scoring.models import ConversationScore, ScoreCheck
from leads.models import Message
from tests.factories import AgentMessageFactory, ConversationFactory, LeadFactory, MessageFactory

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

SHOTS = Path(os.environ.get("FOLLOWUP_SHOTS") or Path(tempfile.gettempdir()) / "shots-h5")
PASSWORD = "pass-for-tests-2026"
FOLLOW = {
    "reply": "Just checking in, Bianca: shall I book you a free trial session?",
    "qualified": False,
    "lead_fields": {},
    "handoff": False,
    "handoff_reason": None,
}


def _watch(page, problems: list[str]) -> None:
    page.on(
        "console",
        lambda m: problems.append(f"console {m.type}: {m.text}") if m.type in ("error", "warning") else None,
    )
    page.on("pageerror", lambda e: problems.append(f"page error: {e}"))
    page.on("requestfailed", lambda r: problems.append(f"request failed: {r.url}"))
    page.on("response", lambda r: problems.append(f"HTTP {r.status} {r.url}") if r.status >= 400 else None)


def _at(message, when):
    Message.objects.filter(pk=message.pk).update(created_at=when)
    return message


def _history(version) -> None:
    """Scores on earlier days, so the chart has a line to draw."""
    for days_ago, passed in ((1, [True, False]), (3, [True, True]), (6, [False, True]), (9, [True, True])):
        for ok in passed:
            lead = LeadFactory()
            conversation = ConversationFactory(lead=lead)
            reply = AgentMessageFactory(conversation=conversation, prompt_version=version)
            score = ConversationScore.objects.create(
                conversation=conversation, through_message=reply, prompt_version=version, passed=ok
            )
            check = ScoreCheck.objects.create(
                score=score,
                name="At most N questions in one message",
                kind="max_questions",
                passed=ok,
                prompt_version=version,
            )
            when = timezone.now() - timedelta(days=days_ago)
            ConversationScore.objects.filter(pk=score.pk).update(created_at=when)
            ScoreCheck.objects.filter(pk=check.pk).update(created_at=when)


@pytest.mark.parametrize("width", [1366, 390])
def test_a_scored_conversation_in_the_review_queue_and_the_followup_figures(
    live_server, browser, make_user, fake_openai, fake_manychat, settings, active_version, silent_lead, width
):
    settings.SCORING_RUBRIC = json.dumps([{"kind": "max_questions", "params": {"max": 1}}])
    settings.SCORING_REVIEW_PASSING_RATE = 0.0
    wrote = timezone.now() - timedelta(hours=13)
    lead = LeadFactory(first_name="Carla", last_name="Conti", last_message_at=wrote)
    conversation = ConversationFactory(lead=lead, last_message_at=wrote)
    asked = _at(
        MessageFactory(conversation=conversation, text="Hi! I'd like to lose 5 kg before summer."), wrote
    )
    _at(
        AgentMessageFactory(
            conversation=conversation,
            in_reply_to=asked,
            prompt_version=active_version,
            text="Great goal! How often do you train now? And what is your budget? When could you start?",
        ),
        wrote + timedelta(seconds=3),
    )
    assert scoring_services.scoring_run_due()["scored"] == 1
    _history(active_version)

    fake_openai.reply_with(FOLLOW)
    won_back, _ = silent_lead(hours_ago=5, first_name="Bianca")
    still_silent, _ = silent_lead(hours_ago=5, first_name="Dario")
    for each in (won_back, still_silent):
        assert followup_services.followup_send(lead_id=each.pk).state == "sent"
    MessageFactory(conversation=won_back.conversations.get(), text="Yes please, Saturday works!")

    manager = make_user("manager", password=PASSWORD)
    SHOTS.mkdir(parents=True, exist_ok=True)
    context = browser.new_context(viewport={"width": width, "height": 900})
    page = context.new_page()
    problems: list[str] = []
    _watch(page, problems)
    try:
        page.goto(f"{live_server.url}/accounts/login/")
        page.fill("input[name=username]", manager.username)
        page.fill("input[name=password]", PASSWORD)
        with page.expect_navigation():
            page.click("form [type=submit]")

        page.goto(f"{live_server.url}/dashboard/training/review/?source=scoring")
        body = page.locator("main").inner_text()
        assert "At most N questions in one message" in body
        assert "failed on turn 2" in body
        assert "by conversation scoring" in body
        assert "When could you start?" in body
        page.screenshot(path=str(SHOTS / f"review-scoring-{width}.png"), full_page=True)

        page.goto(f"{live_server.url}/dashboard/followups-scoring/")
        row = page.locator("[data-testid=comeback-row]").first
        assert row.is_visible()
        cells = row.locator("td").all_inner_texts()
        assert cells[:4] == [f"v{active_version.version}", "2", "2", "1"]
        assert cells[4] == "50%"
        assert page.locator("#chart-scoring").is_visible()
        page.screenshot(path=str(SHOTS / f"followups-scoring-{width}.png"), full_page=True)
    finally:
        context.close()
    assert problems == []
