"""The API docs load in headless Chromium from our own server only: no CDN, no external request."""

from urllib.parse import urlparse

import pytest

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


def test_api_docs_render_with_zero_external_requests(live_server, browser_page, make_user):
    from leads import roles

    page = browser_page
    user = make_user(roles.VIEWER, password="docs-pass-2026")
    page.goto(f"{live_server.url}/accounts/login/")
    page.fill("input[name=username]", user.username)
    page.fill("input[name=password]", "docs-pass-2026")
    page.click("button[type=submit]")
    page.wait_for_load_state("networkidle")
    requested: list[str] = []
    page.on("request", lambda request: requested.append(request.url))
    problems: list[str] = []
    page.on("pageerror", lambda error: problems.append(str(error)))
    page.on("requestfailed", lambda request: problems.append(f"failed: {request.url}"))
    page.on("console", lambda message: message.type == "error" and problems.append(message.text))
    page.goto(f"{live_server.url}/api/docs/")
    page.wait_for_selector(".opblock-summary-path", timeout=20000)
    paths = page.locator(".opblock-summary-path").all_inner_texts()
    assert any("/webhooks/manychat/" in path for path in paths)
    assert any("/api/training/examples/" in path for path in paths)
    ours = urlparse(live_server.url).netloc
    external = [
        url for url in requested if urlparse(url).scheme in ("http", "https") and urlparse(url).netloc != ours
    ]
    assert external == []
    assert any("/static/drf_spectacular_sidecar/" in url for url in requested)
    assert problems == []
