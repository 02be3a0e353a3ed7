"""Stale examples: approved examples that quote a fact a catalog version removed or changed.

This sits in `agent`, the layer that knows both the catalog (prompts) and the examples (training).
"""

from django.conf import settings
from django.db import models


class StaleExample(models.Model):
    """An approved example that quotes a fact a catalog version removed or changed.

    While unresolved it is kept out of the agent's examples; a reviewer re-reviews it (edit, retire or keep).
    """

    catalog_version = models.ForeignKey(
        "prompts.CatalogVersion", on_delete=models.CASCADE, related_name="stale_examples"
    )
    training_example = models.ForeignKey(
        "training.TrainingExample", on_delete=models.CASCADE, related_name="stale_flags"
    )
    old_fact = models.CharField(max_length=300)
    new_fact = models.CharField(max_length=300, blank=True, default="")
    resolved_at = models.DateTimeField(null=True, blank=True)
    resolved_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        db_table = "catalog_stale_examples"
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["catalog_version", "training_example", "old_fact"], name="catalog_stale_unique"
            ),
        ]
        indexes = [models.Index(fields=["resolved_at"], name="catalog_stale_open_idx")]

    def __str__(self) -> str:
        return f"Example {self.training_example_id} quotes {self.old_fact}"
