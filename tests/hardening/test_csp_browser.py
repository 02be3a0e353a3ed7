"""The Content-Security-Policy in a real browser: every page loads with a clean console (no blocked inline
script or style), at desktop and phone widths. Screenshots go to /tmp/shots-<ME>/ for a person to look at."""

import os
from pathlib import Path

import pytest

from leads import roles
from tests.factories import (
    AgentMessageFactory,
    ConversationFactory,
    MessageFactory,
    PromptVersionFactory,
    TrainingExampleFactory,
)

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]
PASSWORD = "csp-pass-2026"
SHOTS = Path(os.environ.get("CSP_SHOTS_DIR", "/tmp/shots-h4"))  # noqa: S108 - screenshots only
WIDTHS = (1366, 390)


def _pages(world) -> list[str]:
    lead = world["lead"]
    return [
        "/dashboard/",
        "/dashboard/leads/",
        f"/dashboard/leads/{lead.pk}/",
        "/dashboard/training/",
        "/dashboard/training/submit/",
        "/dashboard/training/review/",
        "/dashboard/training/insights/",
        "/dashboard/training/prompt/",
        "/dashboard/notifications/",
        "/admin/",
        f"/admin/leads/lead/{lead.pk}/change/",
        "/admin/training/trainingexample/",
        "/api/docs/",
    ]


@pytest.fixture
def world(make_user):
    manager = make_user(roles.ADMIN, username="csp_admin", password=PASSWORD, is_staff=True)
    conversation = ConversationFactory()
    inbound = MessageFactory(conversation=conversation, text="How much is it?")
    AgentMessageFactory(conversation=conversation, in_reply_to=inbound, text="It is 30 a month.")
    PromptVersionFactory(is_active=True)
    TrainingExampleFactory(submitted_by=manager, conversation=conversation)
    return {"user": manager, "lead": conversation.lead}


@pytest.mark.parametrize("width", WIDTHS)
def test_every_page_passes_the_csp_with_a_clean_console(live_server, browser, world, width):
    SHOTS.mkdir(parents=True, exist_ok=True)
    context = browser.new_context(viewport={"width": width, "height": 900})
    page = context.new_page()
    problems: list[str] = []
    page.on("console", lambda m: m.type == "error" and problems.append(f"{page.url}: {m.text}"))
    page.on("pageerror", lambda error: problems.append(f"{page.url}: {error}"))
    try:
        page.goto(f"{live_server.url}/accounts/login/")
        page.screenshot(path=str(SHOTS / f"csp-login-{width}.png"))
        page.fill("input[name=username]", world["user"].username)
        page.fill("input[name=password]", PASSWORD)
        page.click("button[type=submit]")
        page.wait_for_load_state("networkidle")
        for path in _pages(world):
            response = page.goto(f"{live_server.url}{path}")
            assert response.status == 200, path
            assert "script-src 'self'" in response.headers["content-security-policy"]
            page.wait_for_load_state("networkidle")
            name = path.strip("/").replace("/", "-") or "root"
            page.screenshot(path=str(SHOTS / f"csp-{name}-{width}.png"), full_page=False)
    finally:
        context.close()
    assert problems == []
