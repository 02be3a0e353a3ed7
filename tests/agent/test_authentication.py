"""The webhook's secret check is a DRF authentication class (agent.authentication)."""

import pytest

from agent.apis import ManyChatWebhookApi
from agent.authentication import WEBHOOK_REALM, WebhookSecretAuthentication
from leads.models import Lead
from tests.agent.conftest import SECRET, flat_body

pytestmark = pytest.mark.django_db


def test_the_webhook_authenticates_with_the_secret_class():
    assert ManyChatWebhookApi.authentication_classes == [WebhookSecretAuthentication]


@pytest.mark.parametrize("headers", [{}, {"HTTP_X_WEBHOOK_SECRET": "wrong"}])
def test_a_refused_caller_gets_401_with_the_realm_and_nothing_is_read(webhook, fake_openai, headers):
    response = webhook(flat_body(), secret=None, **headers)
    assert response.status_code == 401
    assert response["WWW-Authenticate"] == WEBHOOK_REALM
    assert Lead.objects.count() == 0 and fake_openai.calls == 0


@pytest.mark.parametrize("header", ["HTTP_X_WEBHOOK_SECRET", "HTTP_AUTHORIZATION"])
def test_the_current_and_the_previous_secret_both_pass(webhook, active_prompt, fake_openai, header):
    for secret in (SECRET, "test-previous-secret"):
        value = secret if header == "HTTP_X_WEBHOOK_SECRET" else f"Bearer {secret}"
        assert webhook(flat_body(text=f"hi {secret}"), secret=None, **{header: value}).status_code == 200
