"""The lead page's Live Chat link in headless Chromium at 1366 and 390 px (screenshots: /tmp/shots-h3)."""

from pathlib import Path

import pytest

from leads.models import Lead
from tests.e2e.conftest import demo, login, new_page  # noqa: F401  (fixtures)

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]
SHOTS = Path("/tmp/shots-h3")  # noqa: S108 - screenshots to look at, not a secret


@pytest.mark.parametrize("width", [1366, 390])
def test_the_live_chat_link_is_visible_and_safe(demo, new_page, width):  # noqa: F811
    lead = Lead.objects.order_by("pk").first()
    Lead.objects.filter(pk=lead.pk).update(live_chat_url="https://manychat.com/fb998877/chat/1234567890")
    page = new_page()
    page.set_viewport_size({"width": width, "height": 900})
    login(page, "viewer")
    page.goto(f"/dashboard/leads/{lead.pk}/")
    link = page.get_by_role("link", name="Open in ManyChat Live Chat")
    assert link.is_visible()
    assert link.get_attribute("href") == "https://manychat.com/fb998877/chat/1234567890"
    assert link.get_attribute("rel") == "noopener noreferrer"
    SHOTS.mkdir(parents=True, exist_ok=True)
    link.scroll_into_view_if_needed()
    page.screenshot(path=str(SHOTS / f"lead-live-chat-{width}.png"))
