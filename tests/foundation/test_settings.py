"""Settings fail closed: with nothing set the app is in production mode and refuses to start without
secrets; preload is opt-in. Each case starts a fresh process, as a deploy would."""

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SECRETS = {
    "DJANGO_SECRET_KEY": "k3Jq-9vT_b2Lm8xR4sW7yZ1nC6pF0hD5gA" * 2,
    "MANYCHAT_WEBHOOK_SECRET": "a-long-random-webhook-secret",
    "DJANGO_ALLOWED_HOSTS": "agent.example.com",
}
READ = (
    "import json, django; django.setup(); from django.conf import settings; "
    "print(json.dumps({n: getattr(settings, n, None) for n in "
    "['DEBUG', 'SECURE_HSTS_PRELOAD', 'SECURE_HSTS_SECONDS', 'TRUSTED_PROXIES']}))"
)


def _settings(**env: str) -> subprocess.CompletedProcess:
    base = {"PATH": "/usr/bin:/bin", "DJANGO_SETTINGS_MODULE": "config.settings"}
    base["DATABASE_URL"] = "sqlite:////tmp/settings-check.sqlite3"
    return subprocess.run(
        [sys.executable, "-c", READ],
        cwd=ROOT,
        env={**base, **env},
        capture_output=True,
        text=True,
        check=False,
    )


def test_without_django_debug_the_app_refuses_to_start_without_secrets():
    result = _settings()
    assert result.returncode != 0
    assert "DJANGO_SECRET_KEY must be set" in result.stderr


def test_without_django_debug_debug_is_off_and_preload_is_not_asked_for():
    result = _settings(**SECRETS)
    assert result.returncode == 0, result.stderr
    values = json.loads(result.stdout.strip().splitlines()[-1])
    assert values["DEBUG"] is False
    assert values["SECURE_HSTS_SECONDS"] >= 31536000
    assert values["SECURE_HSTS_PRELOAD"] is False


def test_preload_and_trusted_proxies_on_request():
    result = _settings(
        **SECRETS, DJANGO_SECURE_HSTS_PRELOAD="1", DJANGO_TRUSTED_PROXIES="10.0.0.0/8, 127.0.0.1"
    )
    assert result.returncode == 0, result.stderr
    values = json.loads(result.stdout.strip().splitlines()[-1])
    assert values["SECURE_HSTS_PRELOAD"] is True
    assert values["TRUSTED_PROXIES"] == ["10.0.0.0/8", "127.0.0.1"]


def test_a_mistyped_trusted_proxy_refuses_to_start():
    result = _settings(**SECRETS, DJANGO_TRUSTED_PROXIES="10.0.0.0/8,proxy.internal")
    assert result.returncode != 0
    assert "TRUSTED_PROXIES: 'proxy.internal'" in result.stderr


def test_local_use_turns_debug_on():
    result = _settings(DJANGO_DEBUG="1")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout.strip().splitlines()[-1])["DEBUG"] is True
