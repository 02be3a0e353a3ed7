import json

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from tests.training.insights.conftest import at
from training.models import ExampleStatus, ExampleType

pytestmark = pytest.mark.django_db

PAGE = "/dashboard/training/insights/"
CANVASES = ["chart-daily", "chart-status", "chart-type", "chart-versions", "chart-funnel", "chart-handoffs"]
TABLES = [
    "table-daily", "table-status", "table-type", "table-versions", "table-funnel", "table-handoffs",
    "table-submitters", "table-reviewers", "table-feedback", "table-flagged",
]  # fmt: skip


def embedded_data(html: str) -> dict:
    return json.loads(
        html.split('<script id="insights-data" type="application/json">')[1].split("</script>")[0]
    )


def test_page_requires_login(client):
    response = client.get(PAGE)
    assert response.status_code == 302
    assert "/accounts/login/" in response["Location"]


def test_page_renders_charts_tables_and_numbers(
    client, viewer, make_example, make_lead, make_handoff, versions
):
    client.force_login(viewer)
    for _ in range(3):
        make_example(created=at(2), status=ExampleStatus.APPROVED)
    make_example(
        created=at(3), status=ExampleStatus.REJECTED, example_type=ExampleType.BAD, feedback="Too pushy"
    )
    lead = make_lead(created=at(2), status="qualified", version=versions[0], qualified=True)
    make_handoff(lead=lead, created=at(4), reason="Refund request")

    response = client.get(PAGE, {"start": "2026-03-01", "end": "2026-03-10"})

    assert response.status_code == 200
    html = response.content.decode()
    for canvas in CANVASES:
        assert f'<canvas id="{canvas}"' in html
    for table in TABLES:
        assert f'data-testid="{table}"' in html
    assert '<div class="stat-value" data-testid="stat-approval">75%</div>' in html
    assert 'data-testid="status-approved">3<' in html
    assert 'data-testid="funnel-qualified">1<' in html
    assert "refund request" in html
    assert "/static/vendor/chart.umd.min.js" in html and "/static/js/insights.js" in html
    assert "/api/training/insights.csv?start=2026-03-01&amp;end=2026-03-10" in html
    data = embedded_data(html)
    assert data["examples"]["approval_rate"] == 0.75
    assert data["handoffs"]["total"] == 1


def test_untrusted_text_is_escaped_in_tables_and_data(client, viewer, make_example):
    client.force_login(viewer)
    evil = "</script><script>alert(1)</script>"
    make_example(created=at(2), example_type=ExampleType.BAD, feedback=evil)

    html = client.get(PAGE, {"start": "2026-03-01", "end": "2026-03-10"}).content.decode()

    assert "<script>alert(1)" not in html
    assert embedded_data(html)["top_feedback"][0]["phrase"] == evil


@pytest.mark.parametrize(
    ("params", "field"), [({"start": "nope"}, "start"), ({"prompt_version": "999999"}, "prompt_version")]
)
def test_bad_filters_show_an_error_and_the_default_range(client, viewer, params, field):
    client.force_login(viewer)
    response = client.get(PAGE, params)
    assert response.status_code == 200
    assert f'data-testid="error-{field}"' in response.content.decode()
    assert embedded_data(response.content.decode())["range"]["prompt_version"] is None


def test_page_query_count_does_not_grow(client, viewer, django_assert_num_queries, make_example):
    client.force_login(viewer)
    params = {"start": "2026-03-01", "end": "2026-03-10"}
    make_example(created=at(2), status=ExampleStatus.APPROVED)
    client.get(PAGE, params)
    with CaptureQueriesContext(connection) as small:
        client.get(PAGE, params)
    for i in range(30):
        make_example(
            created=at(1 + i % 9),
            status=ExampleStatus.REJECTED,
            example_type=ExampleType.BAD,
            feedback=f"F{i}",
        )
    with django_assert_num_queries(len(small.captured_queries)):
        client.get(PAGE, params)
