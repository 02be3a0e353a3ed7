"""Schemathesis over every operation of /api/schema/, as anonymous and as each role (token auth).

Bounded for CI: a few examples per operation and role, no shrinking, no example database. Every response
must be a non-5xx, with a documented status code, content type and body. The webhook is fuzzed with its
secret, so the generated bodies reach the parser and the store.
"""

import pytest
import schemathesis
from django.core.handlers.wsgi import WSGIHandler
from django.core.signals import request_finished, request_started
from django.db import close_old_connections
from hypothesis import HealthCheck, Phase, given, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from leads import roles
from leads.models import Message, MessageRole
from tests.hardening.conftest import ROLES

CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]
MAX_EXAMPLES = 6
# Streaming exports are not JSON and read the whole table; they are covered by tests/training.
SKIP = {"/api/training/export/", "/api/training/insights.csv"}


def _operations(schema):
    for result in schema.get_all_operations():
        operation = result.ok()
        if operation.path not in SKIP:
            yield operation


def _fuzz(operation, headers: dict[str, str]) -> list[str]:
    failures: list[str] = []

    @given(case=operation.as_strategy())
    @settings(
        max_examples=MAX_EXAMPLES,
        deadline=None,
        database=None,
        derandomize=True,
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    def run(case):
        response = case.call(headers=headers)
        try:
            case.validate_response(response, checks=CHECKS)
        except (Exception, BaseExceptionGroup) as error:  # noqa: BLE001 - collected, reported below
            reasons = "; ".join(
                " | ".join(str(e).splitlines()[:3]) for e in getattr(error, "exceptions", [error])
            )
            failures.append(
                f"{operation.method.upper()} {operation.path} -> {response.status_code}: {reasons}"
            )

    run()
    return failures


@pytest.fixture
def wsgi_app():
    """The Django WSGI app, called in process like django.test.Client does: the request signals must
    not close the test's connection (and with it the transaction that holds the test data)."""
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    try:
        yield WSGIHandler()
    finally:
        request_started.connect(close_old_connections)
        request_finished.connect(close_old_connections)


@pytest.mark.parametrize("role", ROLES, ids=lambda r: r or "anonymous")
def test_every_operation_as_each_role(role, world, webhook_secret, fake_openai, settings, wsgi_app):
    settings.AGENT_WEBHOOK_RATE_LIMIT = ""
    fake_openai.reply_with({"reply": "Fuzzed, and still answering."})
    # The schema itself is for signed-in users only (config/settings.py SPECTACULAR_SETTINGS).
    reader = {"Authorization": f"Token {world['tokens'][roles.VIEWER]}"}
    schema = schemathesis.openapi.from_wsgi("/api/schema/", wsgi_app, headers=reader)
    headers = {"Authorization": f"Token {world['tokens'][role]}"} if role else {}
    failures: list[str] = []
    count = 0
    for operation in _operations(schema):
        count += 1
        extra = {"X-Webhook-Secret": webhook_secret} if operation.path.startswith("/webhooks/") else {}
        failures += _fuzz(operation, {**headers, **extra})
    assert count >= 20
    # The webhook's generated bodies got past the secret and were stored (the fuzzing reached the store).
    assert Message.objects.filter(role=MessageRole.LEAD).count() > 1
    assert not failures, "\n".join(sorted(set(failures)))
