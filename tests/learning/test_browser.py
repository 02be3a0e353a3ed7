"""The review queue and the example pages in headless Chromium (issue #18): the keyboard alone, and a
conflicting correction shown to the submitter and the reviewer before approval. Screenshots at 1366 and
390 px go to /tmp/shots-h8/."""

import re
from pathlib import Path

import pytest
from django.contrib.auth import get_user_model
from django.utils import timezone

from tests.e2e.conftest import login
from training.models import ExampleStatus, TrainingExample
from training.review.fields import DECIDED_AT, DECIDED_BY

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

SHOTS = Path("/tmp/shots-h8")  # noqa: S108 - where this engineer's screenshots are looked at
WIDTHS = {"desktop": 1366, "phone": 390}


def shots(page, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    size = page.viewport_size
    for label, width in WIDTHS.items():
        page.set_viewport_size({"width": width, "height": 900})
        page.screenshot(path=str(SHOTS / f"{name}-{label}.png"), full_page=True)
    page.set_viewport_size(size)


def user(username: str):
    return get_user_model().objects.get(username=username)


def pending(user_message: str, **fields) -> TrainingExample:
    return TrainingExample.objects.create(
        user_message=user_message,
        ai_response=fields.pop("ai_response", "Let me check."),
        feedback=fields.pop("feedback", "Not helpful."),
        example_type=fields.pop("example_type", "correction"),
        expected_response=fields.pop("expected_response", "Plans start at 49 a month."),
        submitted_by=user("operator"),
        **fields,
    )


def test_the_review_queue_is_worked_with_the_keyboard_alone(demo, new_page):
    first = pending("How much is the basic plan?")
    second = pending("Do you ship to Lisbon?", expected_response="Yes, in 3 to 5 days.")
    third = pending("Is there a free trial?", expected_response="Yes, 14 days free.")
    page = new_page("manager")
    login(page, "manager")
    page.goto("/dashboard/training/review/")
    shots(page, "review-queue")
    current = page.locator("[data-card].current")
    assert current.get_attribute("data-example-id") == str(first.pk)

    page.keyboard.press("j")
    assert current.get_attribute("data-example-id") == str(second.pk)
    page.keyboard.press("k")
    page.keyboard.press("j")
    with page.expect_navigation():
        page.keyboard.press("a")  # approve the second
    assert page.locator("[data-card]").count() == 2

    # The next pending one is current now: reject it with a note.
    assert page.locator("[data-card].current").get_attribute("data-example-id") == str(third.pk)
    page.keyboard.press("r")
    page.keyboard.type("We stopped the free trial in May")
    with page.expect_navigation():
        page.keyboard.press("Enter")

    # Edit the first one's expected response, then approve it with Ctrl+Enter.
    assert page.locator("[data-card].current").get_attribute("data-example-id") == str(first.pk)
    page.keyboard.press("e")
    page.keyboard.press("Control+a")
    page.keyboard.type("The basic plan is 49 a month, billed monthly.")
    shots(page, "review-edit")
    with page.expect_navigation():
        page.keyboard.press("Control+Enter")
    assert page.locator("[data-testid=queue-empty]").is_visible()
    shots(page, "review-empty")

    states = {e.pk: e for e in TrainingExample.objects.all()}
    assert states[second.pk].status == ExampleStatus.APPROVED
    assert (states[third.pk].status, states[third.pk].review_note) == (
        ExampleStatus.REJECTED,
        "We stopped the free trial in May",
    )
    assert states[first.pk].status == ExampleStatus.APPROVED
    assert states[first.pk].expected_response == "The basic plan is 49 a month, billed monthly."
    assert states[first.pk].metadata["reviewer_edit"]["before"] == "Plans start at 49 a month."


def test_a_conflicting_correction_is_shown_to_the_submitter_and_the_reviewer(demo, new_page):
    approved = TrainingExample.objects.create(
        user_message="How much does the coaching program cost per month?",
        ai_response="I am not sure.",
        expected_response="It is $300 a month, billed monthly, cancel any time.",
        feedback="Give the price.",
        example_type="correction",
        status=ExampleStatus.APPROVED,
        **{DECIDED_AT: timezone.now(), DECIDED_BY: user("manager")},
    )
    page = new_page("operator")
    login(page, "operator")
    page.goto("/dashboard/training/submit/?tab=manual")
    page.fill("#id_manual-user_message", "How much does the coaching program cost each month?")
    page.fill("#id_manual-ai_response", "It is $300 a month.")
    page.check("input[name='manual-example_type'][value='correction']")
    page.fill("#id_manual-feedback", "We only sell yearly plans now.")
    page.fill("#id_manual-expected_response", "We only offer a yearly plan: $2,900 paid once.")
    with page.expect_navigation():
        page.locator("#manual-form [type=submit]").click()
    assert "/dashboard/training/library/" in page.url
    conflict = page.locator("[data-similar-kind=conflict]")
    assert conflict.count() == 1 and f"#{approved.pk}" in conflict.inner_text()
    assert re.search(r"contradicts? this one", page.locator(".flash-warning").inner_text())
    shots(page, "submit-conflict")

    reviewer = new_page("manager")
    login(reviewer, "manager")
    reviewer.goto("/dashboard/training/review/")
    card = reviewer.locator("[data-card].has-conflict")
    assert card.count() == 1
    assert f"#{approved.pk}" in card.locator("[data-similar-kind=conflict]").inner_text()
    shots(reviewer, "review-conflict")
    reviewer.goto(f"/dashboard/training/library/{approved.pk}/")
    shots(reviewer, "example-detail")
    reviewer.goto("/dashboard/training/library/")
    shots(reviewer, "library")
    reviewer.goto("/dashboard/training/suggestions/")
    shots(reviewer, "suggestions")


def test_tactics_on_the_suggestions_page_and_examples_seen_in_the_evaluation(demo, new_page):
    """A selling tactic ranked with the other suggestions, a refused one with its reason, and the examples
    the model saw under each evaluation verdict (screenshots at both widths)."""
    from agent.models import EvaluationResult, EvaluationRun, EvaluationStatus
    from prompts.selectors import active_prompt_version
    from prompts.services import prompt_version_create_draft
    from training.suggestions import services as suggestion_services

    manager = user("manager")
    active = active_prompt_version()
    example = TrainingExample.objects.create(
        user_message="Can my payment be refunded?",
        ai_response="Yes, within 14 days.",
        feedback="Policy.",
        example_type="good",
        status=ExampleStatus.APPROVED,
        **{DECIDED_AT: timezone.now(), DECIDED_BY: manager},
    )
    draft = prompt_version_create_draft(
        content=f"{active.content}\n\nAsk the lead's goal first, then offer a short call.",
        user=manager,
        change_note="Selling tactic from outcomes “Ask the goal, then offer the call” (20 conversations that "
        "booked or bought vs 20 that did not), resting on messages #101, #102, #240.",
        parent=active,
    )
    tactic = suggestion_services.suggestion_create(
        theme="Selling tactic: Ask the goal, then offer the call",
        example_ids=[],
        base_version_id=active.pk,
        draft_version_id=draft.pk,
        rationale="Won conversations ask the goal before talking about plans.",
        user=manager,
    )
    suggestion_services.suggestion_record_results(
        suggestion_id=tactic.pk,
        results={
            "source": "outcomes",
            "citations": [101, 102, 240],
            "compared": {"won": 20, "lost": 20},
            "others_total": 1,
            "others_passed": 1,
            "others_passed_before": 1,
            "regressions": [],
            "fixed": [],
        },
    )
    refused = suggestion_services.suggestion_create(
        theme="Selling tactic: Anchor the price",
        example_ids=[],
        base_version_id=active.pk,
        draft_version_id=None,
        rationale="",
        user=manager,
        results={"source": "outcomes", "citations": [101]},
    )
    suggestion_services.suggestion_record_failure(
        suggestion_id=refused.pk,
        error="refused: it states facts (amount '49 €'); a tactic may not give prices, amounts, dates, links "
        "or phone numbers",
    )
    run = EvaluationRun.objects.create(
        prompt_version=draft, status=EvaluationStatus.DONE, example_limit=10, total=1, processed=1, passed=1
    )
    EvaluationResult.objects.create(
        run=run,
        training_example=example,
        reply="Yes, within 14 days.",
        passed=True,
        reason="Consistent.",
        examples=[{"id": example.pk, "rank": 1, "score": 0.8312, "method": "embedding"}],
    )

    page = new_page("manager")
    login(page, "manager")
    page.goto("/dashboard/training/suggestions/")
    assert page.get_by_test_id("suggest-tactics").is_visible()
    assert "rests on messages #101, #102, #240" in page.get_by_test_id("tactic-source").first.inner_text()
    assert "states facts" in page.content()
    shots(page, "suggestions-tactics")
    page.goto("/dashboard/training/prompt/#evaluation")
    seen = page.get_by_test_id("examples-seen").first
    seen.locator("summary").click()
    assert f"#{example.pk}" in seen.inner_text() and "0.83" in seen.inner_text()
    shots(page, "evaluation-examples-seen")
    page.set_viewport_size({"width": 390, "height": 900})
    page.get_by_test_id("evaluation-results").screenshot(path=str(SHOTS / "evaluation-results-phone.png"))
