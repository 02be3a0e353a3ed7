"""Browser tests: one headless Chromium for the session, a fresh context per test, a clean console required.

Every page a test opens is watched: a console error, an uncaught exception, a failed request or a response
of 400 and above that the test did not announce with `page.allow(status, url_part)` fails the test. Pages
are saved as screenshots under artifacts/screenshots/<test>-<name>.png for people to look at.
"""

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from django.core.management import call_command

# The session's Chromium is the shared `browser` fixture in tests/browser.py.
PASSWORD = "demo-pass-2026"
ROLES = ("admin", "manager", "operator", "viewer")
ROOT = Path(__file__).resolve().parents[2]
SCREENSHOTS = ROOT / "artifacts" / "screenshots"
DEMO_FIXTURE = ROOT / "fixtures" / "demo.json"


@dataclass
class Watch:
    """What went wrong on one page, and which error statuses the test announced."""

    label: str
    problems: list[str] = field(default_factory=list)
    allowed: list[tuple[int, str]] = field(default_factory=list)

    def is_allowed(self, status: int, url: str) -> bool:
        return any(status == s and part in url for s, part in self.allowed)


def _instrument(page, watch: Watch) -> None:
    def on_console(message) -> None:
        if message.type != "error":
            return
        # Chromium reports every >= 400 response on the console too; announced ones are not problems.
        status = re.search(r"status of (\d{3})", message.text)
        url = (message.location or {}).get("url", "")
        if status and watch.is_allowed(int(status.group(1)), url):
            return
        watch.problems.append(f"console error: {message.text} ({url})")

    def on_response(response) -> None:
        if response.status >= 400 and not watch.is_allowed(response.status, response.url):
            watch.problems.append(f"HTTP {response.status}: {response.request.method} {response.url}")

    page.on("console", on_console)
    page.on("pageerror", lambda error: watch.problems.append(f"page error: {error}"))
    page.on(
        "requestfailed",
        lambda request: watch.problems.append(f"request failed: {request.url} ({request.failure})"),
    )
    page.on("response", on_response)

    def allow(status: int, url_part: str) -> None:
        watch.allowed.append((status, url_part))

    page.allow = allow


@pytest.fixture
def new_page(browser, live_server, request) -> Iterator[Callable[..., object]]:
    """Open another watched page in its own browser context (its own cookies: one per signed-in user)."""
    contexts = []
    watches: list[Watch] = []
    request.node.e2e_watches = watches

    def make(label: str = "page"):
        context = browser.new_context(base_url=live_server.url, viewport={"width": 1280, "height": 900})
        context.set_default_timeout(30_000)
        context.set_default_navigation_timeout(30_000)
        contexts.append(context)
        page = context.new_page()
        watch = Watch(label)
        watches.append(watch)
        _instrument(page, watch)
        return page

    yield make
    for context in contexts:
        context.close()


@pytest.fixture
def page(new_page):
    return new_page()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item):
    result = yield
    problems = [f"[{w.label}] {p}" for w in getattr(item, "e2e_watches", []) for p in w.problems]
    if problems:
        raise AssertionError("the browser saw problems:\n" + "\n".join(problems))
    return result


def _safe(name: str) -> str:
    return re.sub(r"[^\w.-]+", "_", name).strip("_")


@pytest.fixture
def shot(request) -> Callable[[object, str], Path]:
    """Save a full-page screenshot as artifacts/screenshots/<test>-<name>.png."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    test = _safe(request.node.name)
    for stale in SCREENSHOTS.glob(f"{test}-*.png"):
        stale.unlink()

    def save(page, name: str) -> Path:
        path = SCREENSHOTS / f"{test}-{_safe(name)}.png"
        page.screenshot(path=str(path), full_page=True)
        return path

    return save


def login(page, username: str, password: str = PASSWORD) -> None:
    """Sign in through the real login form and wait for the dashboard."""
    page.goto("/accounts/login/")
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", password)
    with page.expect_navigation():
        page.click("form [type=submit]")
    assert "/accounts/login/" not in page.url, f"{username} could not sign in"


@pytest.fixture
def demo(db, settings):
    """The demo fixture: users admin/manager/operator/viewer, lead 1 with 20 messages, lead 2, prompt v1."""
    # The demo hashes use 1,000,000 PBKDF2 rounds; a login is still one hash, so keep them as they are.
    call_command("loaddata", str(DEMO_FIXTURE), verbosity=0)
