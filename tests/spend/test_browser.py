"""The Spend page in headless Chromium: the chart is drawn (bars, running total, budget line), the console
stays clean, at 1366 px and 390 px."""

from datetime import datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from django.utils import timezone

from agent.models import SpendDay
from leads.models import Message
from tests.factories import AgentMessageFactory

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

SHOTS = Path(__file__).resolve().parents[2] / "artifacts" / "screenshots"


def test_the_spend_page_draws_the_month_against_the_budget(live_server, browser_page, make_user, settings):
    settings.AGENT_MODEL_PRICES = {"gpt-4o-mini": (Decimal("0.15"), Decimal("0.60"))}
    settings.SPEND_MONTHLY_BUDGET_USD = 2.0
    manager = make_user("manager", password="pass-for-tests-2026")
    today = timezone.localdate()
    first = today.replace(day=1)
    days = sorted({first + timedelta(days=i) for i in range(0, (today - first).days + 1, 2)})
    for i, day in enumerate(days):
        reply = AgentMessageFactory(
            model="gpt-4o-mini", prompt_tokens=400_000 + 50_000 * i, completion_tokens=90_000
        )
        noon = timezone.make_aware(datetime.combine(day, datetime.min.time()) + timedelta(hours=12))
        Message.objects.filter(pk=reply.pk).update(created_at=noon)
    SpendDay.objects.create(
        day=first, purpose="evaluation", prompt_tokens=80_000, usd_micros=120_000, calls=40
    )
    SpendDay.objects.create(day=today, purpose="rehearsal", prompt_tokens=60_000, usd_micros=90_000, calls=30)
    SpendDay.objects.create(day=today, purpose="scoring", prompt_tokens=20_000, usd_micros=30_000, calls=10)

    problems: list[str] = []
    page = browser_page
    page.on("console", lambda m: problems.append(m.text) if m.type in ("error", "warning") else None)
    page.on("pageerror", lambda e: problems.append(str(e)))
    page.goto(f"{live_server.url}/accounts/login/")
    page.fill("input[name=username]", manager.username)
    page.fill("input[name=password]", "pass-for-tests-2026")
    with page.expect_navigation():
        page.click("form [type=submit]")
    page.locator("nav.mainnav a", has_text="Spend").click()
    page.wait_for_load_state("networkidle")

    assert page.url.endswith("/dashboard/spend/")
    chart = page.locator("[data-testid=spend-chart] svg")
    assert chart.locator("rect").count() >= len(days) + 3  # a bar per purpose and day with spend
    assert page.locator("[data-testid=budget-line]").count() == 1
    assert page.locator("[data-testid=spend-line]").count() == 1
    assert page.locator("[data-testid=spend-evaluation] .stat-value").inner_text() == "$0.12"
    assert page.locator("[data-testid=spend-caps] tbody tr").count() >= 4

    SHOTS.mkdir(parents=True, exist_ok=True)
    for width in (1366, 390):
        page.set_viewport_size({"width": width, "height": 900})
        page.wait_for_timeout(150)
        overflow = page.evaluate("() => document.documentElement.scrollWidth - window.innerWidth")
        assert overflow <= 0, f"the page scrolls sideways at {width} px"
        page.screenshot(path=str(SHOTS / f"spend-{width}.png"), full_page=True)
        page.locator("[data-testid=spend-chart]").screenshot(path=str(SHOTS / f"spend-chart-{width}.png"))
    assert problems == []
