"""The insights page in headless Chromium: every chart is drawn, and the console stays clean."""

import pytest

from tests.training.insights.conftest import at
from training.models import ExampleStatus, ExampleType

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


def test_insights_page_draws_every_chart(
    live_server, browser_page, make_user, make_example, make_lead, versions
):
    manager = make_user("manager", password="pass-for-tests-2026")
    for i in range(6):
        make_example(
            created=at(1 + i),
            status=[ExampleStatus.APPROVED, ExampleStatus.REJECTED, ExampleStatus.PENDING][i % 3],
            example_type=[ExampleType.GOOD, ExampleType.BAD, ExampleType.CORRECTION][i % 3],
            submitted_by=manager,
        )
    make_lead(created=at(2), status="qualified", version=versions[0], qualified=True)
    problems = []
    page = browser_page
    page.on("console", lambda m: problems.append(m.text) if m.type in ("error", "warning") else None)
    page.on("pageerror", lambda e: problems.append(str(e)))

    page.goto(f"{live_server.url}/accounts/login/")
    page.fill("input[name=username]", manager.username)
    page.fill("input[name=password]", "pass-for-tests-2026")
    with page.expect_navigation():
        page.click("form [type=submit]")
    assert "/accounts/login/" not in page.url
    page.goto(f"{live_server.url}/dashboard/training/insights/?start=2026-03-01&end=2026-03-10")
    page.wait_for_load_state("networkidle")

    drawn = page.evaluate(
        "() => Array.from(document.querySelectorAll('canvas')).map(c => [c.id, !!window.Chart.getChart(c)])"
    )
    assert dict(drawn) == {
        "chart-daily": True,
        "chart-status": True,
        "chart-type": True,
        "chart-versions": True,
        "chart-funnel": True,
    }
    # No handoffs in the range: a "no data yet" note instead of bare axes.
    assert page.locator("[data-testid=no-data-handoffs]").is_visible()
    points = page.evaluate("() => window.Chart.getChart('chart-status').data.datasets[0].data")
    assert points == [2, 2, 2]
    # The interval is a whisker drawn over a dot, not a floating bar.
    kinds = page.evaluate(
        "() => { const c = window.Chart.getChart('chart-versions');"
        " return [c.config.type, c.data.datasets.length]; }"
    )
    assert kinds == ["line", 1]
    assert problems == []
