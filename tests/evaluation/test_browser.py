"""The prompt page's evaluation card in headless Chromium: progress while queued, then the verdict table."""

from pathlib import Path

import pytest

from agent import evaluation
from training.models import ExampleType

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

SCREENSHOTS = Path(__file__).resolve().parents[2] / "artifacts" / "screenshots"


def test_the_card_follows_a_run_and_then_shows_verdicts_example_by_example(
    live_server, browser_page, make_user, model, approved, versions
):
    active, draft = versions
    manager = make_user("manager", password="pass-for-tests-2026")
    approved(ExampleType.GOOD, user_message="Do you have a club in Lyon?", ai_response="Yes, two of them!")
    approved(
        ExampleType.CORRECTION,
        user_message="How much is it?",
        ai_response="It depends.",
        expected_response="Plans start at 49 euros a month; want a free trial week?",
    )
    approved(
        ExampleType.BAD,
        user_message="Can I get a refund?",
        ai_response="No refunds, ever.",
        metadata={"forbidden_phrases": ["guarantee"]},
    )
    model.agent(
        lambda messages: (
            "Plans start at 49 euros a month; want a free trial week?"
            if "(v2)" in messages[0]["content"]
            else "We guarantee you will love it!"
        )
    )
    model.judge(
        lambda data: (
            (True, "Close to the expected answer.")
            if "refund" not in data["lead_message"]
            else (False, "It does not answer the refund question.")
        )
    )
    run = evaluation.evaluation_run_create(version=draft, against=active, schedule=False)
    problems: list[str] = []
    page = browser_page
    page.on("console", lambda m: problems.append(m.text) if m.type in ("error", "warning") else None)
    page.on("pageerror", lambda e: problems.append(str(e)))

    page.goto(f"{live_server.url}/accounts/login/")
    page.fill("input[name=username]", manager.username)
    page.fill("input[name=password]", "pass-for-tests-2026")
    with page.expect_navigation():
        page.click("form [type=submit]")
    page.goto(f"{live_server.url}/dashboard/training/prompt/#evaluation")
    card = page.locator("[data-testid=evaluation]")
    assert card.locator("[data-testid=evaluate]").inner_text() == "Test v2 against approved examples"
    first = card.locator(f'[data-run-id="{run.pk}"]')
    assert first.locator('[data-field="processed"]').inner_text() == "0"
    assert first.locator('[data-field="total"]').inner_text() == "3"
    assert first.locator('[data-field="status"]').inner_text() == "Queued"

    # The page polls the progress API; once both runs finish it reloads with the table.
    evaluation.evaluation_run_execute(run_id=run.pk)
    # A locator wait, not wait_for_function: the page's CSP forbids the eval that one needs.
    page.locator(f'[data-run-id="{run.pk}"] [data-field=status]', has_text="Done").wait_for(timeout=10_000)
    evaluation.evaluation_run_execute(run_id=run.baseline_run_id)
    page.wait_for_selector("[data-testid=evaluation-results]", timeout=10_000)

    rows = page.locator("[data-testid=evaluation-results] tbody tr")
    assert rows.count() == 3
    texts = [rows.nth(i).inner_text() for i in range(3)]
    assert "Do you have a club in Lyon?" in texts[0] and texts[0].count("pass") == 2
    assert (
        "How much is it?" in texts[1]
        and "pass" in texts[1]
        and "Similarity to the expected response" in texts[1]
    )
    assert (
        "It does not answer the refund question." in texts[2]
        and "Uses forbidden phrases: guarantee." in texts[2]
    )
    progress = page.locator("[data-testid=evaluation-progress]").inner_text()
    assert "3/3" in progress and "67%" in progress and "33%" in progress
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    card.scroll_into_view_if_needed()
    card.screenshot(path=str(SCREENSHOTS / "evaluation-card.png"))
    page.screenshot(path=str(SCREENSHOTS / "evaluation-prompt-page.png"), full_page=True)
    assert problems == []


def test_the_button_runs_the_test_in_the_background_and_the_page_follows_it(
    live_server, browser_page, make_user, model, approved, versions, settings
):
    # No broker (the local demo): the task runs in a background thread of the server process.
    settings.CELERY_TASK_ALWAYS_EAGER = True
    operator = make_user("operator", password="pass-for-tests-2026")
    approved(ExampleType.GOOD, user_message="Do you have a club in Lyon?", ai_response="Yes, two of them!")
    approved(ExampleType.GOOD, user_message="Are you open on Sundays?", ai_response="Yes, 9 to 5.")
    model.judge(lambda data: ("Lyon" in data["lead_message"], "judged"))
    problems: list[str] = []
    page = browser_page
    page.on("console", lambda m: problems.append(m.text) if m.type in ("error", "warning") else None)
    page.on("pageerror", lambda e: problems.append(str(e)))

    page.goto(f"{live_server.url}/accounts/login/")
    page.fill("input[name=username]", operator.username)
    page.fill("input[name=password]", "pass-for-tests-2026")
    with page.expect_navigation():
        page.click("form [type=submit]")
    page.goto(f"{live_server.url}/dashboard/training/prompt/")
    assert page.locator("[data-testid=evaluation-empty]").is_visible()
    with page.expect_navigation():
        page.click("[data-testid=evaluate]")
    assert "Testing v2 beside active v1 against up to 50 approved examples." in page.content()
    # The page polls until both runs are done, then reloads with the finished card.
    page.wait_for_selector('[data-testid=evaluation-progress][data-finished="1"]', timeout=15_000)

    progress = page.locator("[data-testid=evaluation-progress]").inner_text()
    assert progress.count("2/2 examples") == 2 and progress.count("50%") == 2
    assert page.locator("[data-testid=evaluation-results] tbody tr").count() == 2
    assert problems == []
