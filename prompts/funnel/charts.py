"""The funnel drawn as inline SVG geometry: one bar per step (its rate) with the 95% interval as a whisker.

Computed here so templates only place shapes (no script, no inline style: the CSP allows neither).
"""

from __future__ import annotations

from typing import Any

BAR = 34
GAP = 14
LEFT = 34
TOP = 8
HEIGHT = 90
LABEL_SPACE = 30


def _percent(value: float | None) -> str:
    return "–" if value is None else f"{value * 100:.1f}%"


def funnel_chart(*, funnel: dict[str, Any]) -> dict[str, Any]:
    """Shapes for one version's funnel (VersionFunnel.as_dict()): bars, whiskers, ticks and labels."""
    bars = []
    conversations = funnel["conversations"]
    for i, step in enumerate(funnel["steps"]):
        x = LEFT + GAP + i * (BAR + GAP)
        rate = step["rate"] or 0.0
        low, high = step["rate_low"], step["rate_high"]
        interval = (low, high) if low is not None and high is not None else None
        bar_h = rate * HEIGHT
        bar: dict[str, Any] = {
            "step": step["step"],
            "label": step["label"],
            "x": round(x, 1),
            "y": round(TOP + HEIGHT - bar_h, 1),
            "height": round(bar_h, 1),
            "cx": round(x + BAR / 2, 1),
            "cap_x1": round(x + BAR / 2 - 6, 1),
            "cap_x2": round(x + BAR / 2 + 6, 1),
            "title": (
                f"{step['label']}: {step['count']} of {conversations} ({_percent(step['rate'])}), "
                f"95% interval {_percent(low)} – {_percent(high)}"
            ),
            "text": _percent(step["rate"]),
            "text_y": TOP + HEIGHT + 12,
            "label_y": TOP + HEIGHT + 24,
            "whisker": None,
        }
        if interval is not None:
            bar["whisker"] = {
                "y1": round(TOP + HEIGHT - interval[1] * HEIGHT, 1),
                "y2": round(TOP + HEIGHT - interval[0] * HEIGHT, 1),
            }
        bars.append(bar)
    width = LEFT + GAP + len(funnel["steps"]) * (BAR + GAP)
    ticks = [{"y": round(TOP + HEIGHT - p * HEIGHT, 1), "text": f"{int(p * 100)}%"} for p in (0, 0.5, 1)]
    return {
        "width": width,
        "height": TOP + HEIGHT + LABEL_SPACE,
        "axis_x": LEFT,
        "axis_y1": TOP,
        "axis_y2": TOP + HEIGHT,
        "ticks": ticks,
        "bars": bars,
        "label": f"Funnel of v{funnel['version']}: rate of each step with its 95% interval",
    }


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


def funnel_display(*, funnel: dict[str, Any]) -> dict[str, Any]:
    """A funnel (VersionFunnel.as_dict()) with its texts for a page and its chart."""
    steps = [
        {
            **step,
            "rate_text": _percent(step["rate"]),
            "interval": f"{_percent(step['rate_low'])} – {_percent(step['rate_high'])}",
            "median": _duration(step["median_seconds"]),
        }
        for step in funnel["steps"]
    ]
    return {**funnel, "steps": steps, "chart": funnel_chart(funnel=funnel)}
