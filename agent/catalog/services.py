"""The catalog in the turn and in releases: grounding replies, filtering examples, flagging stale ones.

- `catalog_release`: publish the working copy as a catalog version and save a draft prompt version that
  carries it (the active text and model settings, the new catalog), so the change goes live through the
  normal release flow and a rollback restores the old prompt and the old catalog together; approved examples
  that quote a fact the new catalog no longer holds are flagged for re-review.
- `reply_ground`: the facts a reply states that the catalog in force does not hold (the turn answers with the
  safe line and hands the lead to a person when there are any).
- `examples_grounded`: approved examples whose texts state a fact the catalog in force does not hold are left
  out of the model input, so a price change takes old-price examples out at once.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from agent.catalog.models import StaleExample
from prompts.catalog.grounding import GroundingResult, extract_facts, ground_reply
from prompts.catalog.models import CatalogVersion
from prompts.catalog.selectors import catalog_changes, catalog_facts_for, catalog_version_for
from prompts.catalog.services import catalog_version_publish
from prompts.models import PromptVersion
from prompts.services import prompt_version_create_draft
from training.models import ExampleStatus, TrainingExample

T = TypeVar("T")
EXAMPLE_TEXT_FIELDS = ("ai_response", "expected_response")


@dataclass(frozen=True)
class CatalogRelease:
    catalog_version: CatalogVersion
    draft: PromptVersion
    stale_flagged: int


@transaction.atomic
def catalog_release(*, user: Any, change_note: str) -> CatalogRelease:
    active = PromptVersion.objects.filter(is_active=True).first()
    previous = catalog_version_for(prompt_version=active)
    catalog_version = catalog_version_publish(user=user, change_note=change_note)
    content = active.content if active is not None else ""
    draft = prompt_version_create_draft(
        content=content,
        user=user,
        change_note=f"Catalog v{catalog_version.number}: {change_note.strip()}"[:500],
        parent=active,
    )
    copied = {"catalog_version": catalog_version}
    if active is not None:
        for name in ("model_name", "temperature", "reasoning_effort", "max_output_tokens"):
            if hasattr(active, name):
                copied[name] = getattr(active, name)
    PromptVersion.objects.filter(pk=draft.pk).update(**copied)
    draft.refresh_from_db()
    flagged = stale_examples_flag(old=previous, new=catalog_version)
    return CatalogRelease(catalog_version=catalog_version, draft=draft, stale_flagged=flagged)


def stale_examples_flag(*, old: CatalogVersion | None, new: CatalogVersion) -> int:
    """Flag the approved examples that state a fact `new` no longer holds; returns how many flags."""
    changes = catalog_changes(old=old, new=new)
    if not changes:
        return 0
    flags = []
    for change in changes:
        # Narrow in SQL by the number or link as written, then confirm with the same extractor.
        fact = change.old_fact
        probe = fact.value.split(".")[0] if fact.kind == "amount" else fact.value
        condition = Q()
        for name in EXAMPLE_TEXT_FIELDS:
            condition |= Q(**{f"{name}__icontains": probe[:40]})
        candidates = TrainingExample.objects.filter(condition, status=ExampleStatus.APPROVED).only(
            "pk", *EXAMPLE_TEXT_FIELDS
        )
        for example in candidates:
            stated = {
                (fact.kind, fact.value)
                for name in EXAMPLE_TEXT_FIELDS
                for fact in extract_facts(getattr(example, name) or "")
            }
            if (change.old_fact.kind, change.old_fact.value) in stated:
                flags.append(
                    StaleExample(
                        catalog_version=new,
                        training_example_id=example.pk,
                        old_fact=change.old_fact.text[:300],
                        new_fact=change.new_text[:300],
                    )
                )
    StaleExample.objects.bulk_create(flags, ignore_conflicts=True)
    return len(flags)


def stale_example_resolve(*, flag: StaleExample, user: Any) -> StaleExample:
    if flag.resolved_at is None:
        flag.resolved_at = timezone.now()
        flag.resolved_by = user
        flag.save(update_fields=["resolved_at", "resolved_by"])
    return flag


def reply_ground(
    *, reply: str, prompt_version: PromptVersion | None, context_texts: Iterable[str] = ()
) -> GroundingResult:
    """Grounding of one reply against the catalog released with `prompt_version` (none: nothing to check)."""
    catalog_version = catalog_version_for(prompt_version=prompt_version)
    if catalog_version is None:
        return GroundingResult()
    facts = catalog_facts_for(catalog_version=catalog_version)
    return ground_reply(reply=reply, catalog=facts, context_texts=context_texts)


def examples_grounded(*, examples: Sequence[T], prompt_version: PromptVersion | None) -> list[T]:
    """Drop examples (dicts or rows with ai_response/expected_response) that state facts the catalog lacks."""
    catalog_version = catalog_version_for(prompt_version=prompt_version)
    if catalog_version is None:
        return list(examples)
    return examples_grounded_in(examples=examples, catalog_version=catalog_version)


def examples_grounded_in(*, examples: Sequence[T], catalog_version: CatalogVersion) -> list[T]:
    facts = catalog_facts_for(catalog_version=catalog_version)
    kept = []
    for example in examples:
        texts = [
            (example.get(name) if isinstance(example, dict) else getattr(example, name, "")) or ""
            for name in EXAMPLE_TEXT_FIELDS
        ]
        if all(ground_reply(reply=text, catalog=facts).ok for text in texts):
            kept.append(example)
    return kept
