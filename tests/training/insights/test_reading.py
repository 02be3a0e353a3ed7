"""Insights that read at a glance: preset ranges, weekly buckets past 90 days, "no data yet" instead of bare
axes, intervals as whiskers, tables without a nested scrollbar."""

import datetime as dt
from pathlib import Path

import pytest
from django.utils import timezone

from tests.training.insights.conftest import at
from training.insights.selectors import (
    InsightsFilter,
    insights_bucket_for,
    insights_series_by_bucket,
    training_insights,
)
from training.models import ExampleStatus, ExampleType

pytestmark = pytest.mark.django_db
PAGE = "/dashboard/training/insights/"
STATIC = Path(__file__).resolve().parents[3] / "static"


@pytest.mark.parametrize(("days", "bucket"), [(7, "day"), (90, "day"), (91, "week"), (365, "week")])
def test_ranges_past_90_days_are_bucketed_by_week(days, bucket):
    start = dt.date(2026, 1, 1)
    f = InsightsFilter(start=start, end=start + dt.timedelta(days=days - 1))
    assert insights_bucket_for(f=f) == bucket


def test_weekly_buckets_sum_the_days_and_start_on_monday(make_example):
    # 2026-03-01 is a Sunday: the first week is that one day, then Monday-to-Sunday weeks.
    make_example(created=at(1), example_type=ExampleType.BAD)
    make_example(created=at(2), status=ExampleStatus.APPROVED, decided=at(3))
    make_example(created=at(8))
    make_example(created=at(9), example_type=ExampleType.BAD)
    f = InsightsFilter(start=dt.date(2026, 3, 1), end=dt.date(2026, 6, 30))
    daily = training_insights(f=f)
    weekly = training_insights(f=f, bucket="week")
    assert len(daily["submissions_per_day"]) == 122
    rows = weekly["submissions_per_day"]
    assert [r["day"] for r in rows[:3]] == ["2026-03-01", "2026-03-02", "2026-03-09"]
    assert len(rows) == 19
    assert [(r["total"], r["good"], r["bad"]) for r in rows[:3]] == [(1, 0, 1), (2, 2, 0), (1, 0, 1)]
    for key in ("total", "good", "bad", "correction"):
        assert sum(r[key] for r in rows) == sum(d[key] for d in daily["submissions_per_day"])
    assert weekly["decisions_per_day"][1] == {"day": "2026-03-02", "approved": 1, "rejected": 0}
    assert (
        insights_series_by_bucket(daily["submissions_per_day"], bucket="day") == daily["submissions_per_day"]
    )


def test_the_page_offers_presets_and_marks_the_current_one(client, viewer):
    client.force_login(viewer)
    today = timezone.localdate()
    html = client.get(PAGE, {"start": (today - dt.timedelta(days=89)).isoformat(), "end": today.isoformat()})
    html = html.content.decode()
    nav = html[html.index('data-testid="insights-presets"') :].split("</nav>")[0]
    for label in ("Last 7 days", "Last 30 days", "Last 90 days", "This month", "Last 12 months"):
        assert label in nav
    assert f'href="?start={today.replace(day=1).isoformat()}&amp;end={today.isoformat()}"' in nav
    assert nav.count('aria-current="true"') == 1
    assert 'aria-current="true">Last 90 days<' in nav


def test_a_year_reads_by_week_on_the_page(client, viewer):
    client.force_login(viewer)
    html = client.get(PAGE, {"start": "2025-03-11", "end": "2026-03-10"}).content.decode()
    assert "Submissions and decisions per week" in html and 'data-testid="weekly-note"' in html
    assert "<th>Week of</th>" in html


def test_an_empty_range_says_no_data_yet_instead_of_bare_axes(client, viewer):
    client.force_login(viewer)
    html = client.get(PAGE, {"start": "2026-03-01", "end": "2026-03-10"}).content.decode()
    for name in ("daily", "status", "type", "versions", "funnel", "handoffs"):
        assert f'data-testid="no-data-{name}"' in html
        assert f'<canvas id="chart-{name}"' not in html


def test_intervals_are_whiskers_and_tables_have_no_inner_scrollbar():
    script = (STATIC / "js" / "insights.js").read_text()
    versions_chart = script[script.index('draw("chart-versions"') :].split("\n  });\n")[0]
    assert 'type: "bar"' not in versions_chart and "plugins: [whiskers]" in versions_chart
    css = (STATIC / "css" / "insights.css").read_text()
    rule = css[css.index(".insights-table {") :].split("}")[0]
    assert "max-height" not in rule and "overflow-x: auto" in rule
