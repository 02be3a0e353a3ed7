"""The Spend page (managers): the month's model spend per purpose, per day against the budget; the caps."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal

from django.conf import settings
from django.contrib.auth.mixins import LoginRequiredMixin, PermissionRequiredMixin
from django.http import Http404
from django.shortcuts import render
from django.utils import timezone
from django.views import View

from agent import budget
from agent.spend import selectors, services
from agent.spend.models import SpendPurpose

COLORS = {
    SpendPurpose.AGENT: "#2f6fdf",
    SpendPurpose.EVALUATION: "#d98a00",
    SpendPurpose.REHEARSAL: "#7b4fc9",
    SpendPurpose.SCORING: "#1a9a6b",
}
WIDTH, HEIGHT, LEFT, BOTTOM, TOP = 720, 260, 56, 28, 12


@dataclass(frozen=True)
class Bar:
    x: float
    y: float
    width: float
    height: float
    color: str
    title: str


def _chart(month: selectors.MonthSpend, today: date) -> dict:
    """SVG geometry (computed here: the CSP allows no script and no inline style): the daily spend as
    stacked bars, the month's running total as a line, and the budget as a horizontal line."""
    days = month.days
    top = max([month.budget, *(d.cumulative for d in days), Decimal("0.01")]) * Decimal("1.08")
    plot_w, plot_h = WIDTH - LEFT - 8, HEIGHT - BOTTOM - TOP
    step = plot_w / len(days)

    def y(value: Decimal) -> float:
        return round(TOP + plot_h - float(value / top) * plot_h, 2)

    bars: list[Bar] = []
    points = []
    for i, day in enumerate(days):
        x = LEFT + i * step
        base = Decimal(0)
        for purpose in SpendPurpose:
            usd = day.usd.get(purpose, Decimal(0))
            if usd <= 0:
                continue
            bars.append(
                Bar(
                    round(x + step * 0.15, 2),
                    y(base + usd),
                    round(step * 0.7, 2),
                    round(y(base) - y(base + usd), 2),
                    COLORS[purpose],
                    f"{day.day:%b %-d} · {purpose.label}: ${usd:,.4f}",
                )
            )
            base += usd
        if day.day <= today:  # the running total stops today
            points.append(f"{round(x + step / 2, 2)},{y(day.cumulative)}")
    ticks = [(y(top * k / 4), f"${top * k / 4:,.2f}") for k in range(5)]
    labels = [
        (round(LEFT + i * step + step / 2, 2), f"{d.day.day}")
        for i, d in enumerate(days)
        if d.day.day == 1 or d.day.day % 5 == 0
    ]
    return {
        "width": WIDTH,
        "height": HEIGHT,
        "left": LEFT,
        "right": WIDTH - 8,
        "bottom": HEIGHT - BOTTOM,
        "bars": bars,
        "line": " ".join(points),
        "budget_y": y(month.budget) if month.budget else None,
        "ticks": ticks,
        "labels": labels,
        "label_y": HEIGHT - 8,
    }


def _month(raw: str, today: date) -> date:
    if not raw:
        return today.replace(day=1)
    try:
        year, number = (int(part) for part in raw.split("-", 1))
        return date(year, number, 1)
    except ValueError as exc:
        raise Http404("Give the month as YYYY-MM.") from exc


class SpendView(LoginRequiredMixin, PermissionRequiredMixin, View):
    permission_required = services.PERM_MANAGE_SPEND

    def get(self, request):
        today = timezone.localdate()
        first = _month(request.GET.get("month", ""), today)
        month = selectors.spend_month(month=first, today=today)
        previous = (first.replace(day=1) - timedelta(days=1)).replace(day=1)
        following = (first.replace(day=28) + timedelta(days=4)).replace(day=1)
        caps = []
        for purpose in SpendPurpose:
            for cap in budget.caps_for(purpose=purpose, lead_id=0 if purpose == SpendPurpose.AGENT else None):
                scope = "per lead" if cap.lead_id is not None else "overall"
                caps.append((purpose.label, scope, cap.setting, cap.describe(cap.limit)))
        return render(
            request,
            "spend/spend.html",
            {
                "month": month,
                "chart": _chart(month, today),
                "colors": [(p.label, COLORS[p]) for p in SpendPurpose],
                "caps": caps,
                "previous": previous,
                "following": following if following <= today else None,
                "share": round(month.budget_share * 100) if month.budget_share is not None else None,
                "alert_emails": bool(settings.SPEND_ALERT_EMAILS),
            },
        )
