"""Writes for suggestions; the flow that asks the model and evaluates lives in the agent layer
(agent/suggestions/flow.py), which may use the prompts and evaluation apps."""

from typing import Any

from django.db import transaction

from training.suggestions.models import ImprovementSuggestion, SuggestionStatus


@transaction.atomic
def suggestion_create(
    *,
    theme: str,
    example_ids: list[int],
    base_version_id: int | None,
    draft_version_id: int | None,
    rationale: str,
    user: Any,
    results: dict[str, Any] | None = None,
) -> ImprovementSuggestion:
    """`results` may name the source from the start ({"source": "outcomes", "citations": [...]})."""
    return ImprovementSuggestion.objects.create(
        theme=theme[:200],
        example_ids=[int(i) for i in example_ids],
        base_version_id=base_version_id,
        draft_version_id=draft_version_id,
        rationale=rationale[:4000],
        results=results or {},
        created_by=user if getattr(user, "is_authenticated", False) else None,
    )


def suggestion_record_results(*, suggestion_id: int, results: dict[str, Any]) -> None:
    """Store the evaluation: gain = theme examples fixed - other examples that regressed."""
    gain = len(results.get("fixed", [])) - len(results.get("regressions", []))
    ImprovementSuggestion.objects.filter(pk=suggestion_id).update(
        results=results, gain=gain, status=SuggestionStatus.EVALUATED
    )


def suggestion_record_failure(*, suggestion_id: int, error: str) -> None:
    ImprovementSuggestion.objects.filter(pk=suggestion_id).update(
        status=SuggestionStatus.FAILED, error=error[:2000]
    )
