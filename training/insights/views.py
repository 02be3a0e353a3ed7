import datetime as dt
from typing import Any
from urllib.parse import urlencode

from django.contrib.auth.mixins import LoginRequiredMixin, PermissionRequiredMixin
from django.core.exceptions import PermissionDenied
from django.shortcuts import render
from django.urls import reverse
from django.utils import timezone
from django.views import View

from leads import roles
from prompts.catalog.selectors import catalog_refusals_per_version
from prompts.funnel.charts import funnel_display
from prompts.funnel.selectors import ATTRIBUTION_RULE
from training.insights.apis import InsightsFilterSerializer
from training.insights.selectors import (
    InsightsFilter,
    insights_bucket_for,
    insights_default_range,
    insights_prompt_version_choices,
    training_insights,
)


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "–"
    minutes = round(seconds / 60)
    if minutes < 60:
        return f"{minutes} min"
    hours, minutes = divmod(minutes, 60)
    if hours < 48:
        return f"{hours} h {minutes} min"
    days, hours = divmod(hours, 24)
    return f"{days} d {hours} h"


def _percent(value: float | None) -> str:
    return "–" if value is None else f"{value * 100:.1f}%"


def _version_row(v: dict) -> dict:
    return {
        **v,
        "rate": _percent(v["success_rate"]),
        "interval": f"{_percent(v['success_rate_low'])} – {_percent(v['success_rate_high'])}",
    }


def _presets(*, f: InsightsFilter, today: dt.date) -> list[dict[str, Any]]:
    """One-click ranges (the prompt version filter is kept); the one matching the range is marked current."""
    ranges = [
        ("Last 7 days", today - dt.timedelta(days=6), today),
        ("Last 30 days", today - dt.timedelta(days=29), today),
        ("Last 90 days", today - dt.timedelta(days=89), today),
        ("This month", today.replace(day=1), today),
        ("Last 12 months", today - dt.timedelta(days=364), today),
    ]
    presets = []
    for label, start, end in ranges:
        query: dict[str, str | int] = {"start": start.isoformat(), "end": end.isoformat()}
        if f.prompt_version_id is not None:
            query["prompt_version"] = f.prompt_version_id
        current = (start, end) == (f.start, f.end)
        presets.append({"label": label, "url": f"?{urlencode(query)}", "current": current})
    return presets


class TrainingInsightsView(LoginRequiredMixin, PermissionRequiredMixin, View):
    """The insights page: charts drawn by static/js/insights.js from the json_script data, tables beside."""

    permission_required = roles.PERM_VIEW_EXAMPLES

    def handle_no_permission(self):
        # Signed out: to the login page. Signed in without the permission: 403.
        if self.request.user.is_authenticated:
            raise PermissionDenied("Your role may not view training insights.")
        return super().handle_no_permission()

    def get(self, request):
        params = {k: request.GET.get(k, "") for k in ("start", "end", "prompt_version")}
        parsed = InsightsFilterSerializer(data={k: v for k, v in params.items() if v})
        errors = {}
        if parsed.is_valid():
            f = InsightsFilter(**parsed.validated_data)
        else:
            errors = {field: " ".join(str(m) for m in messages) for field, messages in parsed.errors.items()}
            start, end = insights_default_range()
            f = InsightsFilter(start=start, end=end)
        bucket = insights_bucket_for(f=f)
        insights = training_insights(f=f, bucket=bucket)
        refusals = catalog_refusals_per_version(
            since=f.since, until=f.until, prompt_version_id=f.prompt_version_id
        )
        query: dict[str, str | int] = {"start": f.start.isoformat(), "end": f.end.isoformat()}
        if f.prompt_version_id is not None:
            query["prompt_version"] = f.prompt_version_id
        return render(
            request,
            "training/insights.html",
            {
                "insights": insights,
                "filter": f,
                "presets": _presets(f=f, today=timezone.localdate()),
                "bucket": bucket,
                "has_daily": any(d["total"] for d in insights["submissions_per_day"])
                or any(d["approved"] or d["rejected"] for d in insights["decisions_per_day"]),
                "has_lead_funnel": any(stage["count"] for stage in insights["lead_funnel"]),
                "errors": errors,
                "versions": insights_prompt_version_choices(),
                "median_review": _duration(insights["review_time"]["median_seconds"]),
                "daily": list(
                    zip(insights["submissions_per_day"], insights["decisions_per_day"], strict=True)
                ),
                "version_rows": [_version_row(v) for v in insights["prompt_versions"]],
                "funnel_rows": [funnel_display(funnel=v) for v in insights["funnel"]],
                "attribution_rule": ATTRIBUTION_RULE,
                "refusals": refusals,
                "refusals_max": max((r["refused"] for r in refusals), default=0),
                "csv_url": f"{reverse('api:insights_csv')}?{urlencode(query)}",
                "api_url": f"{reverse('api:training_insights')}?{urlencode(query)}",
            },
        )
