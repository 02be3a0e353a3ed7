"""In headless Chromium, clean console: a scenario drafted from a real conversation on the lead page, a
rehearsal started from the prompt page, and a failed transcript read; at 1366 px and 390 px."""

import os
import tempfile
from pathlib import Path

import pytest

from agent.rehearsal.models import RehearsalRun, Scenario, SharedCheck
from prompts.models import PromptVersion
from tests.factories import (
    AgentMessageFactory,
    ConversationFactory,
    LeadFactory,
    MessageFactory,
    PromptVersionFactory,
)

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

SHOTS = Path(os.environ.get("REHEARSAL_SHOTS") or Path(tempfile.gettempdir()) / "shots-h7")
PASSWORD = "pass-for-tests-2026"


def _watch(page, problems: list[str]) -> None:
    page.on(
        "console",
        lambda m: problems.append(f"console {m.type}: {m.text}") if m.type in ("error", "warning") else None,
    )
    page.on("pageerror", lambda e: problems.append(f"page error: {e}"))
    page.on("requestfailed", lambda r: problems.append(f"request failed: {r.url}"))
    page.on("response", lambda r: problems.append(f"HTTP {r.status} {r.url}") if r.status >= 400 else None)


@pytest.mark.parametrize("width", [1366, 390])
def test_from_a_conversation_to_a_failed_transcript(live_server, browser, make_user, fake_openai, width):
    fake_openai.play_rehearsal()
    SharedCheck.objects.create(
        name="Allowed prices", kind="allowed_prices", params={"prices": ["€49", "€99"]}, never=True
    )
    PromptVersion.objects.update(is_active=False)
    newest = max(PromptVersion.objects.values_list("version", flat=True), default=0)
    active = PromptVersionFactory(
        version=newest + 1, content="You are Ava, a careful sales assistant.", is_active=True
    )
    draft = PromptVersionFactory(version=newest + 2, content="You are Ava (draft). INVENTS-PRICES.")
    lead = LeadFactory(first_name="Bianca", last_name="Baker")
    conversation = ConversationFactory(lead=lead)
    asked = MessageFactory(
        conversation=conversation, text="Hi! How much is the coaching program? Budget is tight."
    )
    AgentMessageFactory(
        conversation=conversation,
        in_reply_to=asked,
        text="It depends! What budget do you have?",
        prompt_version=active,
    )
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

        # 1. From the lead page, one click drafts a scenario from the conversation; edit, then save.
        page.goto(f"{live_server.url}/dashboard/leads/{lead.pk}/")
        page.screenshot(path=str(SHOTS / f"lead-{width}.png"), full_page=True)
        with page.expect_navigation():
            page.click("[data-testid=rehearse-conversation]")
        assert page.locator("[data-testid=drafted-notice]").is_visible()
        assert page.input_value("#sc-opening") == "Hi! How much is the coaching program? Budget is tight."
        assert "budget: 2k a month" in page.input_value("#sc-facts")
        page.fill("#sc-title", "Bianca, tight budget")
        page.screenshot(path=str(SHOTS / f"scenario-draft-{width}.png"), full_page=True)
        with page.expect_navigation():
            page.click("[data-testid=save-scenario]")
        scenario = Scenario.objects.get()
        assert scenario.title == "Bianca, tight budget" and scenario.source_conversation_id == conversation.pk
        assert "Bianca, tight budget" in page.locator("[data-testid=scenarios]").inner_text()

        # 2. From the prompt page, rehearse the draft beside the active version.
        page.goto(f"{live_server.url}/dashboard/training/prompt/#rehearsal")
        card = page.locator("[data-testid=rehearsal]")
        assert card.locator("[data-testid=rehearse]").inner_text() == f"Rehearse v{draft.version}"
        card.scroll_into_view_if_needed()
        page.screenshot(path=str(SHOTS / f"prompt-card-{width}.png"))
        with page.expect_navigation():
            card.locator("[data-testid=rehearse]").click()
        run = RehearsalRun.objects.get()
        # The report follows the run and reloads once it has finished.
        page.locator("[data-testid=run-status]", has_text="Done").wait_for(timeout=60_000)
        assert "Release gate: closed" in page.locator("[data-testid=gate]").inner_text()
        row = page.locator("[data-testid=report-scenarios] tbody tr").first
        assert "Turn 2: quoted €79, which is not an allowed price (€49, €99)." in row.inner_text()
        page.screenshot(path=str(SHOTS / f"report-{width}.png"), full_page=True)

        # 3. One click to the failed transcript: who said what, and the check that failed on turn 2.
        with page.expect_navigation():
            row.locator(".play-fail").first.click()
        assert page.locator("[data-testid=play-verdict]").inner_text() == "failed"
        failed_turn = page.locator(".bubble-failed")
        assert failed_turn.count() == 1 and failed_turn.get_attribute("data-turn") == "2"
        assert "€79" in failed_turn.inner_text()
        assert "✗ Allowed prices: Turn 2: quoted €79" in failed_turn.inner_text()
        roles = page.locator("[data-testid=play-transcript] .bubble").evaluate_all(
            "els => els.map(e => e.dataset.role)"
        )
        assert roles[:4] == ["lead", "agent", "lead", "agent"]
        page.screenshot(path=str(SHOTS / f"transcript-{width}.png"), full_page=True)
        assert run.pk
    finally:
        context.close()
    assert problems == []
