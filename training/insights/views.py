from urllib.parse import urlencode

from django.contrib.auth.mixins import LoginRequiredMixin, PermissionRequiredMixin
from django.core.exceptions import PermissionDenied
from django.shortcuts import render
from django.urls import reverse
from django.views import View

from leads import roles
from prompts.catalog.selectors import catalog_refusals_per_version
from training.insights.apis import InsightsFilterSerializer
from training.insights.selectors import (
    InsightsFilter,
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
        insights = training_insights(f=f)
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
                "errors": errors,
                "versions": insights_prompt_version_choices(),
                "median_review": _duration(insights["review_time"]["median_seconds"]),
                "daily": list(
                    zip(insights["submissions_per_day"], insights["decisions_per_day"], strict=True)
                ),
                "version_rows": [_version_row(v) for v in insights["prompt_versions"]],
                "refusals": refusals,
                "refusals_max": max((r["refused"] for r in refusals), default=0),
                "csv_url": f"{reverse('api:insights_csv')}?{urlencode(query)}",
                "api_url": f"{reverse('api:training_insights')}?{urlencode(query)}",
            },
        )
