"""One headless Debian Chromium for the whole test session, shared by every browser test.

The sync Playwright API runs an event loop in the test thread, so only one Playwright may be started per
session: every browser test asks for this `browser` fixture instead of starting its own.
"""

import os
import shutil

import pytest

# Django's ORM, called from the test thread while Playwright's loop runs there, would otherwise refuse
# with SynchronousOnlyOperation.
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")

CHROMIUM = os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


@pytest.fixture(scope="session")
def browser():
    sync_api = pytest.importorskip("playwright.sync_api")
    if not (shutil.which(CHROMIUM) or os.path.exists(CHROMIUM)):
        message = f"Chromium is not installed at {CHROMIUM} (bin/test installs it: bin/setup --browser)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    playwright = sync_api.sync_playwright().start()
    chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
    yield chromium
    chromium.close()
    playwright.stop()


@pytest.fixture
def browser_page(browser):
    """A plain page in its own context, for tests that watch the console themselves."""
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    yield page
    context.close()
