"""The funnel per version in headless Chromium, on insights and on the version page: drawn as inline SVG
with a whisker per step, the attribution rule written, a clean console; screenshots at 1366 and 390 px
(artifacts/screenshots/funnel-*.png)."""

import datetime as dt
from decimal import Decimal
from pathlib import Path

import pytest
from django.test import override_settings
from django.utils import timezone

from leads.models import LeadStatus, Message
from prompts.funnel.services import funnel_step_record
from prompts.services import prompt_version_record_reply
from tests.factories import AgentMessageFactory, ConversationFactory, MessageFactory, PromptVersionFactory

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]
SHOTS = Path(__file__).resolve().parents[2] / "artifacts" / "screenshots"
PASSWORD = "pass-for-tests-2026"


def _funnel_data() -> list:
    versions = [PromptVersionFactory(version=1), PromptVersionFactory(version=2, is_active=True)]
    now = timezone.now()
    outcomes = [LeadStatus.QUALIFIED, LeadStatus.BOOKED, LeadStatus.CONVERTED, LeadStatus.LOST, None]
    for i in range(24):
        conversation = ConversationFactory()
        start = now - dt.timedelta(days=3, hours=i)
        asked = MessageFactory(conversation=conversation, text="How much is it?")
        reply = AgentMessageFactory(
            conversation=conversation, in_reply_to=asked, prompt_version=versions[i % 2], model="gpt-4o-mini"
        )
        Message.objects.filter(pk__in=[asked.pk, reply.pk]).update(created_at=start)
        type(conversation).objects.filter(pk=conversation.pk).update(started_at=start)
        prompt_version_record_reply(message_id=reply.pk)
        outcome = outcomes[(i + i // 2) % len(outcomes)]
        if outcome is not None:
            at = start + dt.timedelta(hours=2 + i % 5)
            funnel_step_record(lead_id=conversation.lead_id, status=outcome, at=at)
    return versions


def _watch(page) -> list[str]:
    problems: list[str] = []
    page.on("console", lambda m: problems.append(m.text) if m.type in ("error", "warning") else None)
    page.on("pageerror", lambda e: problems.append(str(e)))
    return problems


def _login(page, base: str, user) -> None:
    page.goto(f"{base}/accounts/login/")
    page.fill("input[name=username]", user.username)
    page.fill("input[name=password]", PASSWORD)
    with page.expect_navigation():
        page.click("form [type=submit]")
    assert "/accounts/login/" not in page.url


@override_settings(AGENT_MODEL_PRICES={"gpt-4o-mini": (Decimal("0.15"), Decimal("0.60"))})
def test_funnel_on_insights_and_the_version_page(live_server, browser_page, make_user):
    versions = _funnel_data()
    manager = make_user("manager", password=PASSWORD)
    page = browser_page
    problems = _watch(page)
    _login(page, live_server.url, manager)
    SHOTS.mkdir(parents=True, exist_ok=True)
    today = timezone.localdate()
    insights = (
        f"{live_server.url}/dashboard/training/insights/?start={today - dt.timedelta(days=29)}&end={today}"
    )

    for width in (1366, 390):
        page.set_viewport_size({"width": width, "height": 900})
        page.goto(insights)
        section = page.locator("[data-testid=funnel-section]")
        section.scroll_into_view_if_needed()
        assert (
            "just before the lead reached it"
            in section.locator("[data-testid=attribution-rule]").inner_text()
        )
        charts = section.locator("[data-testid=funnel-chart]")
        assert charts.count() == 2  # one per version
        # Five steps per version, each a bar; a whisker (three lines) wherever there is an interval.
        assert charts.first.locator("g.step").count() == 5
        assert charts.first.locator("[data-testid=whisker]").count() == 5
        rows = section.locator("[data-testid=table-funnel-v1] tbody tr")
        assert rows.count() == 5
        assert rows.nth(1).locator("td").first.inner_text() == "Qualified"
        section.screenshot(path=str(SHOTS / f"funnel-insights-{width}.png"))
        page.screenshot(path=str(SHOTS / f"funnel-insights-page-{width}.png"), full_page=True)
        # Nothing spills sideways on a phone: the page is no wider than the viewport.
        assert page.evaluate("() => document.documentElement.scrollWidth") <= width + 1

        page.goto(f"{live_server.url}/dashboard/training/prompt/versions/{versions[0].pk}/")
        funnel = page.locator("[data-testid=funnel-section]")
        funnel.scroll_into_view_if_needed()
        assert funnel.locator("[data-testid=funnel-chart] g.step").count() == 5
        costs = funnel.locator("[data-testid=funnel-costs]").inner_text()
        assert "per won lead $" in costs and "unknown" not in costs
        funnel.screenshot(path=str(SHOTS / f"funnel-version-{width}.png"))
        assert page.evaluate("() => document.documentElement.scrollWidth") <= width + 1

    assert problems == []
