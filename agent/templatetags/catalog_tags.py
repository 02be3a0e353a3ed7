"""The catalog diff beside a prompt diff: `{% catalog_changes version against as changes %}`."""

from django import template

from prompts.catalog.selectors import CatalogChange, catalog_changes, catalog_version_for
from prompts.models import PromptVersion

register = template.Library()


@register.simple_tag
def catalog_release_diff(version: PromptVersion | None, against: PromptVersion | None) -> dict:
    """What the proposed version's catalog changes against the active one's (both may have none)."""
    new = catalog_version_for(prompt_version=version)
    old = catalog_version_for(prompt_version=against)
    changes: list[CatalogChange] = []
    if new is not None and (old is None or old.pk != new.pk):
        changes = catalog_changes(old=old, new=new)
    return {"new": new, "old": old, "changes": changes, "same": new == old}
