"""The lead page in Chromium: "Mark lost" asks first, the toast offers Undo, and Undo puts the status back."""

import pytest

from leads.models import Lead, LeadStatus
from tests.e2e.conftest import login

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


@pytest.mark.parametrize("width", [1366, 390])
def test_mark_lost_confirms_then_undo_restores(demo, page, shot, width):
    page.set_viewport_size({"width": width, "height": 900})
    login(page, "operator")
    lead = Lead.objects.get(pk=2)
    before = lead.status
    page.goto("/dashboard/leads/2/")
    asked = []

    def answer(dialog):
        asked.append(dialog.message)
        dialog.dismiss() if len(asked) == 1 else dialog.accept()

    page.on("dialog", answer)
    page.get_by_role("button", name="Mark lost").click()  # dismissed: nothing happens
    assert Lead.objects.get(pk=2).status == before
    with page.expect_navigation():
        page.get_by_role("button", name="Mark lost").click()
    assert asked[0].startswith("Mark Daniel Okafor as lost?")
    assert Lead.objects.get(pk=2).status == LeadStatus.LOST
    toast = page.locator("[data-testid=undo-toast]")
    assert toast.is_visible() and "Lead marked as Lost." in toast.inner_text()
    assert "undo=" not in page.url  # a reload does not offer the undo again
    shot(page, f"toast-{width}")
    with page.expect_navigation():
        page.locator("[data-testid=undo-status]").click()
    assert Lead.objects.get(pk=2).status == before
    assert f"Undone: the lead is {LeadStatus(before).label} again." in page.locator(".flashes").inner_text()
    assert page.locator("[data-testid=undo-toast]").count() == 0
    shot(page, f"undone-{width}")
