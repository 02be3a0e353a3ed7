"""{% rehearsal_panel %}: the prompt page's "Rehearse with simulated leads" card
(rehearsal/_prompt_panel.html), next to the single-turn evaluation. It reads what the prompt editor view
loaded (active version, diff, history) and adds two queries: the scenario count and the latest runs."""

from typing import Any

from django import template
from django.conf import settings

from agent.rehearsal import selectors
from agent.rehearsal.models import MAX_REPEATS, Scenario
from leads import roles

register = template.Library()


def _candidate(context: template.Context) -> Any:
    """The version the button rehearses: the one in the diff, else the newest other than the active one."""
    active = context.get("active")
    diff = context.get("diff")
    if diff:
        return diff["version"]
    history = context.get("history") or []
    return next((v for v in history if not v.is_active), active)


@register.inclusion_tag("rehearsal/_prompt_panel.html", takes_context=True)
def rehearsal_panel(context: template.Context) -> dict[str, Any]:
    request = context.get("request")
    user = getattr(request, "user", None)
    active = context.get("active")
    candidate = _candidate(context)
    return {
        "csrf_token": context.get("csrf_token"),
        "can_rehearse": bool(user and user.has_perm(roles.PERM_CREATE_PROMPT)),
        "candidate": candidate,
        "against": active
        if active is not None and candidate is not None and candidate.pk != active.pk
        else None,
        "scenario_count": Scenario.objects.filter(is_active=True).count(),
        "runs": selectors.rehearsal_run_list(limit=5),
        "default_repeats": settings.REHEARSAL_DEFAULT_REPEATS,
        "max_repeats": MAX_REPEATS,
    }
