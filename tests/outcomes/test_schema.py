"""The OpenAPI schema validates with no warning and documents the outbound webhook bodies."""

import yaml
from django.core.management import call_command


def test_schema_validates_and_documents_the_outbound_events(tmp_path):
    out = tmp_path / "schema.yaml"
    call_command("spectacular", "--validate", "--fail-on-warn", "--file", str(out))
    schema = yaml.safe_load(out.read_text())
    assert set(schema["webhooks"]) == {
        "lead.qualified",
        "lead.booked",
        "lead.won",
        "lead.handed_off",
        "lead.waiting",
    }
    body = schema["webhooks"]["lead.booked"]["post"]["requestBody"]["content"]["application/json"]["schema"]
    assert body["$ref"].endswith("/OutboundWebhookEvent")
    assert "X-DMAgent-Signature" in schema["webhooks"]["lead.booked"]["post"]["description"]
    # Each API's nested serializers are their own components, not one shared "Input".
    assert "Input" not in schema["components"]["schemas"] and "Output" not in schema["components"]["schemas"]
