"""{% evaluation_panel %}: the prompt page's "Test against approved examples" card (prompts/_evaluation.html).

It reads what the prompt editor view already loaded (the active version, the diff and history) and adds
one query for the latest run, plus one for its results when there is a run.
"""

from typing import Any

from django import template

from agent import evaluation
from leads import roles

register = template.Library()


def _candidate(context: template.Context) -> Any:
    """The version the button tests: the one in the diff, else the newest other than the active one."""
    active = context.get("active")
    diff = context.get("diff")
    if diff:
        return diff["version"]
    history = context.get("history") or []
    return next((v for v in history if not v.is_active), active)


@register.inclusion_tag("prompts/_evaluation.html", takes_context=True)
def evaluation_panel(context: template.Context) -> dict[str, Any]:
    request = context.get("request")
    user = getattr(request, "user", None)
    active = context.get("active")
    candidate = _candidate(context)
    run = evaluation.evaluation_run_latest()
    rows = evaluation.evaluation_comparison(run=run) if run is not None else []
    runs = [run] + ([run.baseline_run] if run is not None and run.baseline_run_id else []) if run else []
    return {
        "csrf_token": context.get("csrf_token"),
        "can_evaluate": bool(user and user.has_perm(roles.PERM_CREATE_PROMPT)),
        "choices": context.get("history") or [],  # the version picker (prompt page's history page)
        "active": active,
        "candidate": candidate,
        "against": active
        if active is not None and candidate is not None and candidate.pk != active.pk
        else None,
        "default_limit": evaluation.DEFAULT_LIMIT,
        "run": run,
        "runs": runs,
        "finished": all(each.is_finished for each in runs),
        "rows": rows,
    }
