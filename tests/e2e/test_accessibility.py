"""Every dashboard page for every role, at 1366 px and 390 px: axe-core finds no serious or critical
violation, nothing scrolls sideways, and a screenshot is saved for people to look at.

axe-core comes bundled in axe-playwright-python (no download at run time). Screenshots go to
artifacts/screenshots/pages/<role>-<page>-<width>.png.
"""

import re

import pytest
from axe_playwright_python.sync_playwright import Axe

from tests.e2e.conftest import ROLES, ROOT, login
from tests.e2e.test_every_page import DASHBOARD_PAGES

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

SHOTS = ROOT / "artifacts" / "screenshots" / "pages"
WIDTHS = (1366, 390)
EXTRA_PAGES = [
    "/dashboard/inbox/",
    "/dashboard/catalog/",
    "/dashboard/webhooks/",
]
AXE = Axe()


def _pages() -> list[str]:
    seen, pages = set(), []
    for path in [p for p, _ in DASHBOARD_PAGES] + EXTRA_PAGES:
        if path not in seen:
            seen.add(path)
            pages.append(path)
    return pages


def _name(path: str) -> str:
    return re.sub(r"[^\w]+", "_", path.strip("/")).strip("_") or "home"


def _serious(results) -> list[str]:
    found = []
    for violation in results.response.get("violations", []):
        if violation.get("impact") in ("serious", "critical"):
            targets = [", ".join(node.get("target", [])) for node in violation.get("nodes", [])][:3]
            found.append(f"{violation['id']} ({violation['impact']}): {violation['help']} at {targets}")
    return found


@pytest.mark.parametrize("role", ROLES)
def test_pages_are_accessible_and_fit_phones(demo, new_page, role):
    page = new_page(role)
    page.set_default_timeout(30_000)
    page.set_default_navigation_timeout(30_000)
    login(page, role)
    SHOTS.mkdir(parents=True, exist_ok=True)
    problems = []
    for path in _pages():
        page.allow(403, path.split("?")[0])
        for width in WIDTHS:
            page.set_viewport_size({"width": width, "height": 900})
            response = page.goto(path)
            if response is not None and response.status == 403:
                break  # a role that may not open it: test_every_page checks the clean 403
            page.screenshot(path=str(SHOTS / f"{role}-{_name(path)}-{width}.png"), full_page=True)
            overflow = page.evaluate(
                "document.documentElement.scrollWidth - document.documentElement.clientWidth"
            )
            if overflow > 0:
                problems.append(f"{path} at {width} px scrolls sideways by {overflow} px")
            problems.extend(f"{path} at {width} px: {v}" for v in _serious(AXE.run(page)))
    assert problems == [], "\n".join(problems)
