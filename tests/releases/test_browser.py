"""The prompt workspace in headless Chromium (clean console required), screenshots at 1366 and 390 px."""

from pathlib import Path

import pytest
from django.utils import timezone

from prompts.models import PromptVersion
from prompts.releases.models import Experiment, ExperimentStatus, ReleaseProposal
from tests.e2e.conftest import login
from tests.factories import PromptVersionFactory

pytestmark = [pytest.mark.django_db(transaction=True)]
SHOTS = Path("/tmp/shots-h6")  # noqa: S108 - where the engineer looks at them


@pytest.fixture
def workspace(demo, settings):
    settings.RELEASE_TWO_PERSON_RULE = True
    active = PromptVersion.objects.get(is_active=True)
    PromptVersionFactory(
        version=active.version + 1, content="Old draft: greet, then ask the budget.\n", parent=active
    )
    return active


def _open(new_page, label: str):
    page = new_page(label)
    # Eight test suites share two cores: give the live server time.
    page.set_default_timeout(30_000)
    page.set_default_navigation_timeout(30_000)
    return page


def _save(page, name: str, width: int) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.set_viewport_size({"width": width, "height": 900})
    page.screenshot(path=str(SHOTS / f"{name}-{width}.png"), full_page=True)


def test_propose_review_approve_20_percent_then_promote(workspace, new_page):
    author = _open(new_page, "operator")
    login(author, "operator")
    author.goto("/dashboard/training/prompt/")
    author.fill("#prompt-content", workspace.content + "Always ask for the budget before quoting.\n")
    author.fill("#model-name", "gpt-6-luna")
    author.fill("#change-note", "Ask for the budget first")
    with author.expect_navigation():
        author.click("[data-testid=save-and-propose]")
    assert "/proposals/" in author.url
    proposal = ReleaseProposal.objects.get()
    assert author.locator("[data-testid=change-note-shown]").inner_text() == "“Ask for the budget first”"

    reviewer = _open(new_page, "manager")
    login(reviewer, "manager")
    reviewer.goto(f"/dashboard/training/prompt/proposals/{proposal.pk}/")
    assert (
        "+Always ask for the budget before quoting."
        in reviewer.locator("[data-testid=review-diff]").inner_text()
    )
    assert reviewer.locator("[data-testid=evaluation-evidence]").is_visible()
    assert reviewer.locator("[data-testid=rehearsal-evidence]").is_visible()
    _save(reviewer, "review", 1366)
    _save(reviewer, "review", 390)
    reviewer.set_viewport_size({"width": 1366, "height": 900})
    reviewer.check("[data-testid=share-20]")
    with reviewer.expect_navigation():
        reviewer.click("[data-testid=approve]")
    experiment = Experiment.objects.get(status=ExperimentStatus.RUNNING)
    assert experiment.share_percent == 20 and experiment.treatment_id == proposal.version_id
    assert reviewer.locator("[data-testid=experiment-verdict]").is_visible()
    _save(reviewer, "experiment", 1366)
    _save(reviewer, "experiment", 390)
    reviewer.set_viewport_size({"width": 1366, "height": 900})
    reviewer.once("dialog", lambda dialog: dialog.accept())
    with reviewer.expect_navigation():
        reviewer.click("[data-testid=experiment-promote]")
    assert PromptVersion.objects.get(is_active=True).pk == proposal.version_id
    experiment.refresh_from_db()
    assert experiment.status == ExperimentStatus.PROMOTED


def test_the_author_sees_the_two_person_rule(workspace, new_page):
    page = _open(new_page, "manager")
    login(page, "manager")
    draft = PromptVersion.objects.exclude(is_active=True).order_by("-version").first()
    page.goto(f"/dashboard/training/prompt/versions/{draft.pk}/")
    page.fill("#propose-note", "My own change")
    with page.expect_navigation():
        page.click("[data-testid=propose-submit]")
    assert page.locator("[data-testid=two-person-notice]").is_visible()
    assert page.locator("[data-testid=approve]").is_disabled()


def test_emergency_rollback_asks_for_confirmation_and_a_reason(workspace, new_page):
    from django.contrib.auth import get_user_model

    from prompts import services as prompt_services

    manager = get_user_model().objects.get(username="manager")
    newer = PromptVersion.objects.exclude(is_active=True).order_by("-version").first()
    prompt_services.prompt_version_activate(version=newer, user=manager)
    page = _open(new_page, "manager")
    login(page, "manager")
    page.goto("/dashboard/training/prompt/")
    page.click("[data-testid=emergency-rollback]")
    dialog = page.locator("#rollback-dialog")
    assert (
        dialog.is_visible() and f"v{workspace.version} will replace v{newer.version}" in dialog.inner_text()
    )
    _save(page, "rollback-dialog", 1366)
    page.click("[data-testid=rollback-confirm]")  # empty reason: the browser refuses to submit
    assert PromptVersion.objects.get(is_active=True).pk == newer.pk
    page.fill("[data-testid=rollback-reason]", "Leads get long answers")
    with page.expect_navigation():
        page.click("[data-testid=rollback-confirm]")
    assert PromptVersion.objects.get(is_active=True).pk == workspace.pk


def test_open_and_compare_two_old_versions(workspace, new_page):
    PromptVersionFactory(
        version=workspace.version + 2, content="Third text\n", model_name="gpt-7", parent=workspace
    )
    page = _open(new_page, "viewer")
    login(page, "viewer")
    page.goto("/dashboard/training/prompt/")
    old = workspace.version + 1
    with page.expect_navigation():
        page.click(f"[data-testid=open-{old}]")
    assert page.locator("[data-testid=version-content]").inner_text().startswith("Old draft")
    _save(page, "version", 1366)
    _save(page, "version", 390)
    page.goto("/dashboard/training/prompt/")
    page.check(f"[data-testid=compare-{old}]")
    page.check(f"[data-testid=compare-{old + 1}]")
    with page.expect_navigation():
        page.click("[data-testid=compare-selected]")
    assert "Old draft" in page.locator("[data-testid=compare-a]").inner_text()
    assert "Third text" in page.locator("[data-testid=compare-b]").inner_text()
    assert "gpt-7" in page.locator("[data-testid=settings-table]").inner_text()
    _save(page, "compare", 1366)
    _save(page, "compare", 390)


@pytest.mark.parametrize("width", [1366, 390])
def test_history_actions_are_inside_the_viewport(workspace, new_page, width):
    for n in range(3):
        PromptVersionFactory(
            version=workspace.version + 2 + n, content=f"Version {n}\n" * 40, change_note="x" * 200
        )
    page = _open(new_page, "manager")
    login(page, "manager")
    page.set_viewport_size({"width": width, "height": 900})
    page.goto("/dashboard/training/prompt/")
    buttons = page.locator("table.history .row-actions .btn")
    assert buttons.count() >= 5
    for i in range(buttons.count()):
        box = buttons.nth(i).bounding_box()
        assert box is not None and box["x"] >= 0 and box["x"] + box["width"] <= width, (i, box)
    _save(page, "prompt-page", width)
    page.locator("table.history").scroll_into_view_if_needed()
    page.screenshot(path=str(SHOTS / f"history-viewport-{width}.png"))
    assert timezone.now()


def test_the_regression_banner_rolls_back_with_one_confirmation(workspace, new_page):
    from django.contrib.auth import get_user_model

    from prompts import services as prompt_services
    from prompts.releases.models import RegressionAlert

    manager = get_user_model().objects.get(username="manager")
    newer = PromptVersion.objects.exclude(is_active=True).order_by("-version").first()
    prompt_services.prompt_version_activate(version=newer, user=manager)
    RegressionAlert.objects.create(
        version=newer,
        baseline_version=workspace,
        metric="qualification",
        result={"a": {"rate": 0.2}, "b": {"rate": 0.1}, "lift": -0.1},
    )
    page = _open(new_page, "manager")
    login(page, "manager")
    page.goto("/dashboard/training/prompt/")
    banner = page.locator("[data-testid=regression-banner]")
    assert "qualification rate fell from 0.200 to 0.100" in banner.inner_text()
    _save(page, "regression-banner", 1366)
    page.click("[data-testid=banner-rollback]")
    assert page.locator("[data-testid=rollback-reason]").input_value().startswith("Regression watch")
    with page.expect_navigation():
        page.click("[data-testid=rollback-confirm]")
    assert PromptVersion.objects.get(is_active=True).pk == workspace.pk
    assert RegressionAlert.objects.get().status == "rolled_back"
    assert page.locator("[data-testid=regression-banner]").count() == 0
