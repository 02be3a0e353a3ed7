"""The follow-ups and scoring page: silent leads won back per version, and pass rates per check and version.

Its own page (beside the training insights, which another module owns): figures from
agent.followups.selectors and agent.scoring.selectors; the chart is drawn by static/js/followups.js.
"""

from datetime import timedelta
from typing import Any

from django.contrib.auth.mixins import LoginRequiredMixin, PermissionRequiredMixin
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import render
from django.utils import timezone
from django.views import View

from agent.followups.selectors import followup_comebacks_by_version
from agent.scoring.selectors import PassRate, scoring_figures
from leads import roles

DAYS = 30


def _percent(value: float | None) -> str:
    return "–" if value is None else f"{value * 100:.0f}%"


def _interval(interval: tuple[float, float] | None) -> str:
    return "–" if interval is None else f"{_percent(interval[0])} – {_percent(interval[1])}"


def _rate_row(rate: PassRate) -> dict[str, Any]:
    return {
        "key": rate.key,
        "passed": rate.passed,
        "judged": rate.judged,
        "rate": _percent(rate.rate),
        "interval": _interval(rate.interval),
    }


class FollowUpsScoringView(LoginRequiredMixin, PermissionRequiredMixin, View):
    permission_required = roles.PERM_VIEW_EXAMPLES

    def handle_no_permission(self) -> HttpResponseRedirect:
        if self.request.user.is_authenticated:
            raise PermissionDenied("Your role may not view insights.")
        return super().handle_no_permission()

    def get(self, request: HttpRequest) -> HttpResponse:
        since = timezone.now() - timedelta(days=DAYS)
        comebacks = followup_comebacks_by_version(since=since)
        figures = scoring_figures(days=DAYS)
        overall = figures.passed / figures.conversations if figures.conversations else None
        chart = {"days": figures.days, "series": figures.series, "versions": figures.version_series}
        return render(
            request,
            "followups/followups_scoring.html",
            {
                "days": DAYS,
                "comebacks": [
                    {
                        "version": row.version,
                        "followups": row.followups,
                        "silences": row.silences,
                        "came_back": row.came_back,
                        "rate": _percent(row.rate),
                        "interval": _interval(row.interval),
                    }
                    for row in comebacks
                ],
                "scored": figures.conversations,
                "passed": figures.passed,
                "pass_rate": _percent(overall),
                "per_check": [_rate_row(r) for r in figures.per_check],
                "per_version": [_rate_row(r) for r in figures.per_version],
                "chart": chart,
            },
        )
