"""The catalog in headless Chromium (clean console required), screenshots at 1366 and 390 px.

A manager edits a price, sees the approved examples that quote the old one, releases the new catalog with a
prompt version through the review flow, and rolls back: the old price is back in the model input.
"""

from pathlib import Path

import pytest
from django.contrib.auth import get_user_model
from django.utils import timezone

from agent.catalog.services import catalog_release
from agent.model_input import model_input_build
from prompts.catalog.selectors import catalog_version_in_force
from prompts.catalog.services import catalog_import
from prompts.models import PromptVersion
from prompts.services import prompt_version_activate
from tests.e2e.conftest import login
from tests.factories import LeadFactory, TrainingExampleFactory
from training.models import TrainingExample

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]
ROOT = Path(__file__).resolve().parents[2]
SHOTS = ROOT / "artifacts" / "screenshots"


def _approved(text: str) -> TrainingExample:
    decided = "decided_at" if hasattr(TrainingExample, "decided_at") else "approved_at"
    return TrainingExampleFactory(
        ai_response=text, expected_response="", status="approved", **{decided: timezone.now()}
    )


@pytest.fixture
def live_catalog(demo, settings):
    settings.RELEASE_TWO_PERSON_RULE = False
    manager = get_user_model().objects.get(username="manager")
    catalog_import(
        data={
            "offers": [
                {"name": "Starter coaching", "price": "129", "currency": "USD", "billing_terms": "per month"}
            ]
        },
        user=manager,
    )
    release = catalog_release(user=manager, change_note="Launch prices")
    prompt_version_activate(version=release.draft, user=manager)
    return release


def _open(new_page, label):
    page = new_page(label)
    page.set_default_timeout(30_000)
    page.set_default_navigation_timeout(30_000)
    return page


def _shot(page, name):
    SHOTS.mkdir(parents=True, exist_ok=True)
    for width in (1366, 390):
        page.set_viewport_size({"width": width, "height": 900})
        page.screenshot(path=str(SHOTS / f"catalog-{name}-{width}.png"), full_page=True)
        overflow = page.evaluate(
            "document.documentElement.scrollWidth - document.documentElement.clientWidth"
        )
        assert overflow <= 0, f"{name} scrolls sideways at {width} px"
    page.set_viewport_size({"width": 1366, "height": 900})


def _model_input_prices() -> str:
    version = PromptVersion.objects.get(is_active=True)
    messages = model_input_build(
        prompt=version.content,
        lead=LeadFactory(),
        history=[],
        text="How much is starter coaching?",
        catalog_version=catalog_version_in_force(),
    )
    return messages[0]["content"]


def test_price_change_stale_examples_release_and_rollback(live_catalog, new_page):
    quoting = _approved("Starter coaching is $129 per month. Shall I book you a call?")
    _approved("We answer within a day.")
    assert "Starter coaching: 129 USD per month" in _model_input_prices()

    page = _open(new_page, "manager")
    login(page, "manager")
    page.goto("/dashboard/catalog/")
    _shot(page, "page")
    page.click("text=Edit “Starter coaching”")
    page.fill("input[name=price] >> visible=true", "149")
    with page.expect_navigation():
        page.click("button:has-text('Save offer') >> visible=true")
    assert "149 USD" in page.locator("[data-testid=offer-price]").inner_text()

    page.fill("#change-note", "Starter now 149 USD a month")
    with page.expect_navigation():
        page.click("text=Save catalog version")
    draft = PromptVersion.objects.get(catalog_version__number=2)
    assert f"/versions/{draft.pk}/" in page.url

    # The stale example is listed on the catalog page, old and new fact side by side.
    page.goto("/dashboard/catalog/")
    stale = page.locator("[data-testid=stale-example]")
    assert stale.count() == 1
    assert "129 USD" in stale.inner_text() and "149 USD" in stale.inner_text()
    assert f"#{quoting.pk}" in stale.inner_text()
    _shot(page, "stale")

    # Release through the review flow: ask for release, review (catalog diff beside the prompt diff), approve.
    page.goto(f"/dashboard/training/prompt/versions/{draft.pk}/")
    with page.expect_navigation():
        page.click("[data-testid=propose-submit]")
    assert "/proposals/" in page.url
    diff = page.locator("[data-testid=catalog-diff]")
    assert "v1" in diff.inner_text() and "v2" in diff.inner_text() and "149 USD" in diff.inner_text()
    _shot(page, "review")
    with page.expect_navigation():
        page.click("[data-testid=approve]")
    assert PromptVersion.objects.get(is_active=True).pk == draft.pk
    system = _model_input_prices()
    assert "Starter coaching: 149 USD per month" in system and "$129 per month" not in system

    # Emergency rollback restores the previous version and, with it, the old price.
    page.goto("/dashboard/training/prompt/")
    page.click("[data-testid=emergency-rollback]")
    page.fill("[data-testid=rollback-reason]", "Price change not announced yet")
    with page.expect_navigation():
        page.click("[data-testid=rollback-confirm]")
    assert PromptVersion.objects.get(is_active=True).pk == live_catalog.draft.pk
    assert "Starter coaching: 129 USD per month" in _model_input_prices()


def test_viewer_reads_the_catalog_without_editors(live_catalog, new_page):
    page = _open(new_page, "viewer")
    login(page, "viewer")
    page.goto("/dashboard/catalog/")
    assert page.locator("[data-testid=offer]").count() == 1
    assert page.locator("text=Add an offer").count() == 0
    assert page.locator("text=Save catalog version").count() == 0
    _shot(page, "viewer")
