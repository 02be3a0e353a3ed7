import csv
import datetime as dt
import io
import json

import pytest
from django.db import connection
from django.utils import timezone

from tests.factories import UserFactory
from tests.training.insights.conftest import at
from training.models import ExampleStatus, ExampleType

pytestmark = pytest.mark.django_db

API = "/api/training/insights/"
CSV = "/api/training/insights.csv"
PAGE = "/dashboard/training/insights/"


@pytest.fixture
def logged_in(client, viewer):
    client.force_login(viewer)
    return client


def test_default_range_is_the_last_30_days(logged_in, make_example):
    today = timezone.localdate()
    make_example(created=timezone.now() - dt.timedelta(days=2), status=ExampleStatus.APPROVED)
    make_example(created=timezone.now() - dt.timedelta(days=45), status=ExampleStatus.APPROVED)

    response = logged_in.get(API)

    assert response.status_code == 200
    body = response.json()
    assert body["range"] == {
        "start": (today - dt.timedelta(days=29)).isoformat(),
        "end": today.isoformat(),
        "prompt_version": None,
    }
    assert len(body["submissions_per_day"]) == 30
    assert body["examples"]["total"] == 1
    assert set(body) == {
        "range", "examples", "submissions_per_day", "decisions_per_day", "review_time", "top_submitters",
        "top_reviewers", "top_feedback", "top_flagged_replies", "prompt_versions", "funnel", "lead_funnel",
        "handoffs",
    }  # fmt: skip


def test_range_and_prompt_version_parameters(logged_in, make_example, make_reply, versions):
    v1, v2 = versions
    make_example(created=at(2), status=ExampleStatus.APPROVED, message=make_reply(version=v1))
    make_example(created=at(2), status=ExampleStatus.REJECTED, message=make_reply(version=v2))
    make_example(created=at(9), status=ExampleStatus.REJECTED, message=make_reply(version=v1))

    body = logged_in.get(API, {"start": "2026-03-01", "end": "2026-03-05", "prompt_version": v1.pk}).json()

    assert body["range"] == {"start": "2026-03-01", "end": "2026-03-05", "prompt_version": v1.pk}
    assert body["examples"]["by_status"] == {"pending": 0, "approved": 1, "rejected": 0}
    assert body["examples"]["approval_rate"] == 1.0
    assert [d["day"] for d in body["decisions_per_day"]] == [f"2026-03-0{d}" for d in range(1, 6)]


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"start": "yesterday"}, "start"),
        ({"end": "2026-13-01"}, "end"),
        ({"start": "2026-03-10", "end": "2026-03-01"}, "start"),
        ({"start": "2020-01-01", "end": "2026-03-01"}, "end"),
        ({"prompt_version": "v2"}, "prompt_version"),
        ({"prompt_version": "0"}, "prompt_version"),
        ({"prompt_version": "987654"}, "prompt_version"),
        ({"status": "approved"}, "status"),
    ],
)
@pytest.mark.parametrize("url", [API, CSV])
def test_bad_parameters_get_a_400_naming_the_parameter(logged_in, params, field, url):
    response = logged_in.get(url, params)
    assert response.status_code == 400
    assert field in response.json()


def test_permissions(client, make_user):
    assert client.get(API).status_code in (401, 403)
    assert client.get(CSV).status_code in (401, 403)
    nobody = UserFactory(username="no_role")  # staff, but no role: may not view examples
    client.force_login(nobody)
    assert client.get(API).status_code == 403
    assert client.get(CSV).status_code == 403
    assert client.get(PAGE).status_code == 403
    for role in ("viewer", "operator", "manager", "admin"):
        client.force_login(make_user(role))
        assert client.get(API).status_code == 200, role


def test_query_count_of_the_request_is_pinned(client, viewer, django_assert_num_queries, make_example):
    client.force_login(viewer)
    for i in range(3):
        make_example(created=at(2 + i), status=ExampleStatus.APPROVED, submitted_by=viewer, decided_by=viewer)
    params = {"start": "2026-03-01", "end": "2026-03-10"}
    client.get(API, params)  # the session's first use
    # The figures (11, no funnel rows here), the rollup check on PostgreSQL, plus session, user, permissions.
    with django_assert_num_queries(11 + (connection.vendor == "postgresql") + 3) as small:
        client.get(API, params)
    for i in range(40):
        make_example(created=at(1 + i % 9), status=ExampleStatus.REJECTED, submitted_by=UserFactory())
    with django_assert_num_queries(len(small.captured_queries)):
        response = client.get(API, params)
    assert response.json()["examples"]["total"] == 43


def test_csv_download_has_every_figure(logged_in, make_example):
    reviewer = UserFactory(username="rev", first_name="Grace", last_name="Hopper")
    for _ in range(3):
        make_example(created=at(2), status=ExampleStatus.APPROVED, decided_by=reviewer)
    make_example(
        created=at(3),
        status=ExampleStatus.REJECTED,
        decided_by=reviewer,
        example_type=ExampleType.BAD,
        feedback='=HYPERLINK("http://evil")',
    )

    response = logged_in.get(CSV, {"start": "2026-03-01", "end": "2026-03-10"})

    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/csv")
    assert 'filename="insights_2026-03-01_2026-03-10.csv"' in response["Content-Disposition"]
    rows = list(csv.reader(io.StringIO(response.content.decode())))
    assert rows[0] == ["section", "label", "metric", "value"]
    table = {(r[0], r[1], r[2]): r[3] for r in rows[1:]}
    assert table[("examples", "", "approval_rate")] == "0.75"
    assert table[("examples_by_status", "approved", "count")] == "3"
    assert table[("submissions_per_day", "2026-03-02", "total")] == "3"
    assert table[("decisions_per_day", "2026-03-03", "rejected")] == "1"
    assert table[("top_reviewers", "Grace Hopper", "reviewed")] == "4"
    assert table[("review_time", "", "median_seconds")] == "3600.0"
    assert table[("lead_funnel", "converted", "count")] == "0"
    # Text typed by people cannot become a spreadsheet formula.
    assert ("top_feedback", '\'=hyperlink("http://evil")', "count") in table


def test_the_json_is_the_same_as_the_page_data(logged_in, make_example):
    make_example(created=at(2), status=ExampleStatus.APPROVED)
    params = {"start": "2026-03-01", "end": "2026-03-10"}
    api = logged_in.get(API, params).json()
    page = logged_in.get(PAGE, params).content.decode()
    embedded = page.split('<script id="insights-data" type="application/json">')[1].split("</script>")[0]
    assert json.loads(embedded)["examples"] == api["examples"]
