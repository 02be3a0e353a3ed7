"""D6 and the rest of the back-office findings: /admin/login/ under the failed-login limits, limits keyed
on the account and on the real client address (apart), password reset limited, a Content-Security-Policy,
the API schema and docs for signed-in users only."""

import pytest
from django.test import Client

from leads import roles

PASSWORD = "demo-pass-2026"
LOGINS = ["/accounts/login/", "/admin/login/"]


@pytest.fixture
def limits(settings):
    settings.LOGIN_RATE_LIMIT = "5/300"
    settings.LOGIN_IP_RATE_LIMIT = "12/300"
    settings.TRUSTED_PROXIES = ["10.0.0.1"]
    return settings


def _behind_proxy(client_address: str) -> Client:
    # As the README's nginx sends it: the proxy is the peer, the client is in X-Forwarded-For.
    return Client(REMOTE_ADDR="10.0.0.1", HTTP_X_FORWARDED_FOR=client_address)


def _login(client: Client, path: str, username: str, password: str) -> int:
    return client.post(path, {"username": username, "password": password}).status_code


@pytest.mark.parametrize("path", LOGINS)
def test_brute_force_is_refused_and_then_even_the_right_password(limits, make_user, path):
    make_user(roles.ADMIN, username="admin", password=PASSWORD, is_staff=True)
    client = _behind_proxy("203.0.113.5")
    assert [_login(client, path, "admin", f"guess-{i}") for i in range(5)] == [200] * 5
    assert _login(client, path, "admin", "guess-6") == 429
    assert _login(client, path, "admin", PASSWORD) == 429
    assert "_auth_user_id" not in client.session
    # The account limit holds from any address: a botnet cannot spread the guesses.
    assert _login(_behind_proxy("198.51.100.9"), path, "admin", PASSWORD) == 429


def test_the_two_login_pages_share_one_count(limits, make_user):
    make_user(roles.ADMIN, username="admin", password=PASSWORD, is_staff=True)
    client = _behind_proxy("203.0.113.5")
    for i in range(3):
        assert _login(client, "/admin/login/", "admin", f"guess-{i}") == 200
    for i in range(2):
        assert _login(client, "/accounts/login/", "admin", f"guess-{i}") == 200
    assert _login(client, "/admin/login/", "admin", PASSWORD) == 429


@pytest.mark.parametrize("path", LOGINS)
def test_one_colleagues_typos_do_not_lock_out_the_team_behind_one_address(limits, make_user, path):
    make_user(roles.VIEWER, username="viewer", password=PASSWORD, is_staff=True)
    make_user(roles.MANAGER, username="manager", password=PASSWORD, is_staff=True)
    office = _behind_proxy("203.0.113.5")
    for i in range(5):
        _login(office, path, "viewer", f"typo-{i}")
    assert _login(office, path, "viewer", PASSWORD) == 429
    # The manager, same office address, never failed: logs in.
    manager = _behind_proxy("203.0.113.5")
    assert _login(manager, path, "manager", PASSWORD) == 302


def test_many_accounts_from_one_address_lock_that_address_only(limits, make_user):
    make_user(roles.MANAGER, username="manager", password=PASSWORD, is_staff=True)
    attacker = _behind_proxy("203.0.113.66")
    for i in range(12):  # one guess per account name: never trips an account limit
        assert _login(attacker, "/accounts/login/", f"user{i}", "guess") == 200
    assert _login(attacker, "/accounts/login/", "manager", PASSWORD) == 429
    # The address is the client's own, not the proxy's: everyone else still logs in through the proxy.
    assert _login(_behind_proxy("203.0.113.7"), "/accounts/login/", "manager", PASSWORD) == 302


def test_a_forged_forwarded_for_from_an_untrusted_peer_is_ignored(limits, make_user):
    make_user(roles.MANAGER, username="manager", password=PASSWORD, is_staff=True)
    for i in range(12):
        # Each request claims a new address, but the peer is not a trusted proxy: one bucket.
        forger = Client(REMOTE_ADDR="203.0.113.99", HTTP_X_FORWARDED_FOR=f"192.0.2.{i}")
        _login(forger, "/accounts/login/", f"user{i}", "guess")
    forger = Client(REMOTE_ADDR="203.0.113.99", HTTP_X_FORWARDED_FOR="192.0.2.200")
    assert _login(forger, "/accounts/login/", "manager", PASSWORD) == 429


def test_password_reset_is_limited(settings, db):
    settings.PASSWORD_RESET_RATE_LIMIT = "3/3600"
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    client = Client(REMOTE_ADDR="203.0.113.5")
    statuses = [
        client.post("/accounts/password_reset/", {"email": f"x{i}@example.com"}).status_code for i in range(5)
    ]
    assert statuses == [302, 302, 302, 429, 429]
    # Per e-mail address too: many addresses asking for one victim's reset.
    codes = [
        Client(REMOTE_ADDR=f"198.51.100.{i}").post("/accounts/password_reset/", {"email": "v@example.com"})
        for i in range(5)
    ]
    assert [c.status_code for c in codes] == [302, 302, 302, 429, 429]


def test_pages_carry_a_strict_content_security_policy(client, make_user):
    client.force_login(make_user(roles.MANAGER))
    for path in ("/dashboard/", "/accounts/login/", "/admin/", "/api/docs/"):
        policy = client.get(path)["Content-Security-Policy"]
        directives = dict(part.strip().split(" ", 1) for part in policy.split(";") if part.strip())
        assert directives["script-src"] == "'self'" and directives["style-src"] == "'self'"
        assert directives["frame-ancestors"] == "'none'" and directives["object-src"] == "'none'"
        assert "unsafe-inline" not in policy


@pytest.mark.parametrize("path", ["/api/schema/", "/api/docs/"])
def test_schema_and_docs_need_a_signed_in_user(client, make_user, path):
    anonymous = client.get(path)
    assert anonymous.status_code in (302, 401, 403)
    assert b"/webhooks/manychat/" not in anonymous.content
    client.force_login(make_user(roles.VIEWER))
    assert client.get(path).status_code == 200


MANUAL = {
    "user_message": "Do you ship to Canada?",
    "ai_response": "No.",
    "example_type": "correction",
    "feedback": "We do ship to Canada.",
    "expected_response": "Yes, we ship to Canada in 5-7 days.",
}


@pytest.mark.parametrize("forbidden", [True, False])
def test_a_manager_approving_their_own_example(settings, make_user, forbidden):
    settings.TRAINING_FORBID_SELF_APPROVAL = forbidden
    author, other = make_user(roles.MANAGER), make_user(roles.MANAGER, username="second_manager")
    client = Client()
    client.force_login(author)
    example_id = client.post("/api/training/submit/", MANUAL, content_type="application/json").json()["id"]
    own = client.post(
        f"/api/training/approve/{example_id}/", {"action": "approve"}, content_type="application/json"
    )
    if forbidden:
        assert own.status_code == 403
        # Another manager may approve it: the second pair of eyes.
        second = Client()
        second.force_login(other)
        approved = second.post(
            f"/api/training/approve/{example_id}/", {"action": "approve"}, content_type="application/json"
        )
        assert approved.status_code == 200 and approved.json()["status"] == "approved"
    else:
        assert own.status_code == 200 and own.json()["status"] == "approved"
