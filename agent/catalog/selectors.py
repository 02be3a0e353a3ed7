"""Reads for the catalog pages: versions with their changes, stale examples waiting for re-review."""

from __future__ import annotations

from dataclasses import dataclass

from django.db.models import QuerySet

from agent.catalog.models import StaleExample
from prompts.catalog.models import CatalogVersion
from prompts.catalog.selectors import CatalogChange, catalog_changes


def stale_examples_open() -> QuerySet[StaleExample]:
    return (
        StaleExample.objects.filter(resolved_at__isnull=True)
        .select_related("catalog_version", "training_example")
        .order_by("-created_at", "-id")
    )


def stale_example_ids_open() -> set[int]:
    return set(stale_examples_open().values_list("training_example_id", flat=True))


@dataclass(frozen=True)
class VersionRow:
    version: CatalogVersion
    changes: list[CatalogChange]
    prompt_versions: list[int]


def catalog_versions_with_changes(*, limit: int = 20) -> list[VersionRow]:
    versions = list(
        CatalogVersion.objects.select_related("created_by")
        .prefetch_related("prompt_versions")
        .order_by("-number")[: limit + 1]
    )
    rows = []
    for index, version in enumerate(versions[:limit]):
        previous = versions[index + 1] if index + 1 < len(versions) else None
        rows.append(
            VersionRow(
                version=version,
                changes=catalog_changes(old=previous, new=version),
                prompt_versions=sorted(p.version for p in version.prompt_versions.all()),
            )
        )
    return rows
