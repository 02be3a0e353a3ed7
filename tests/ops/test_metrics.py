"""/metrics in Prometheus format: protected, and its counters move with real traffic."""

import json

import pytest
from prometheus_client.parser import text_string_to_metric_families

from config import metrics
from tests.factories import LeadFactory

pytestmark = pytest.mark.django_db


def _scrape(client, token="scrape-token") -> dict[tuple[str, tuple], float]:
    response = client.get("/metrics", HTTP_AUTHORIZATION=f"Bearer {token}")
    assert response.status_code == 200, response.content
    assert response["Content-Type"].startswith("text/plain")
    samples = {}
    for family in text_string_to_metric_families(response.content.decode()):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples


@pytest.fixture(autouse=True)
def _token(settings):
    settings.METRICS_TOKEN = "scrape-token"


def test_metrics_need_the_token(client, settings):
    assert client.get("/metrics").status_code == 401
    assert client.get("/metrics", HTTP_AUTHORIZATION="Bearer wrong").status_code == 401
    settings.METRICS_TOKEN = ""
    settings.DEBUG = False
    assert client.get("/metrics").status_code == 401


def test_webhook_counters_and_latency_move_after_a_webhook(client, settings):
    settings.MANYCHAT_WEBHOOK_SECRET = "metrics-secret"
    before = _scrape(client)
    answered = ("dmagent_webhook_requests_total", (("outcome", "answered"),))
    refused = ("dmagent_webhook_requests_total", (("outcome", "refused"),))
    duration = ("dmagent_webhook_duration_seconds_count", ())
    client.post("/webhooks/manychat/", data="{}", content_type="application/json")  # no secret: 401
    after = _scrape(client)
    assert after[refused] == before.get(refused, 0) + 1
    assert after[duration] == before.get(duration, 0) + 1
    assert after.get(answered, 0) == before.get(answered, 0)


def test_database_state_is_read_at_scrape_time(client):
    LeadFactory(needs_human=True)
    LeadFactory(needs_human=True)
    LeadFactory(needs_human=False)
    samples = _scrape(client)
    assert samples[("dmagent_leads_waiting_for_person", ())] == 2
    assert ("dmagent_sweep_backlog", ()) in samples


def test_event_recorders_label_model_version_and_cost(client, settings):
    settings.AGENT_MODEL_PRICES = {"priced-model": (metrics.Decimal("1.00"), metrics.Decimal("2.00"))}
    before = _scrape(client)
    metrics.record_tokens(model="priced-model", prompt_version=7, prompt_tokens=1000, completion_tokens=500)
    metrics.record_model_call(model="priced-model", seconds=0.3, error_kind="timeout")
    metrics.record_delivery(status="sent")
    metrics.record_handoff(reason="asked_for_human")
    after = _scrape(client)

    def moved(name, **labels):
        key = (name, tuple(sorted(labels.items())))
        return after[key] - before.get(key, 0)

    assert moved("dmagent_tokens_total", model="priced-model", prompt_version="7", kind="prompt") == 1000
    assert moved("dmagent_tokens_total", model="priced-model", prompt_version="7", kind="completion") == 500
    # 1000 x $1/M + 500 x $2/M
    assert moved("dmagent_cost_usd_total", model="priced-model", prompt_version="7") == pytest.approx(0.002)
    assert moved("dmagent_model_errors_total", kind="timeout") == 1
    assert moved("dmagent_model_call_duration_seconds_count", model="priced-model") == 1
    assert moved("dmagent_deliveries_total", status="sent") == 1
    assert moved("dmagent_handoffs_total", reason="asked_for_human") == 1


def test_model_prices_setting_is_validated():
    from django.core.exceptions import ImproperlyConfigured

    from config.env import parse_model_prices

    assert parse_model_prices("a=0.1/0.2, b=1/2")["b"] == (metrics.Decimal("1"), metrics.Decimal("2"))
    with pytest.raises(ImproperlyConfigured, match="model=0.15/0.60"):
        parse_model_prices("a=cheap")


def test_a_turn_moves_the_turn_model_token_and_delivery_counters(client, settings, fake_openai):
    from tests.agent.conftest import SECRET, flat_body
    from tests.factories import PromptVersionFactory

    settings.MANYCHAT_WEBHOOK_SECRET = SECRET
    version = PromptVersionFactory(is_active=True)
    fake_openai.reply_with({"reply": "Happy to help!"})
    before = _scrape(client)
    response = client.post(
        "/webhooks/manychat/",
        data=json.dumps(flat_body(subscriber_id="818181")),
        content_type="application/json",
        HTTP_X_WEBHOOK_SECRET=SECRET,
    )
    assert response.status_code == 200
    after = _scrape(client)

    def moved(name, **labels):
        key = (name, tuple(sorted(labels.items())))
        return after.get(key, 0) - before.get(key, 0)

    assert moved("dmagent_webhook_requests_total", outcome="answered") == 1
    assert moved("dmagent_turns_total", outcome="answered") == 1
    assert moved("dmagent_turn_duration_seconds_count", mode="webhook") == 1
    assert moved("dmagent_deliveries_total", status="returned") == 1
    models = {
        dict(labels).get("model")
        for (name, labels) in after
        if name == "dmagent_model_call_duration_seconds_count"
    }
    assert sum(moved("dmagent_model_call_duration_seconds_count", model=m) for m in models if m) == 1
    prompt_tokens = sum(
        after[key] - before.get(key, 0)
        for key in after
        if key[0] == "dmagent_tokens_total" and ("prompt_version", str(version.version)) in key[1]
    )
    assert prompt_tokens > 0
