"""Suggested prompt edits: one per theme of corrections, each a draft version with its evaluation."""

from django.conf import settings
from django.db import models
from django.db.models import Q


class SuggestionStatus(models.TextChoices):
    EVALUATING = "evaluating", "Evaluating"
    EVALUATED = "evaluated", "Evaluated"
    FAILED = "failed", "Failed"


class ImprovementSuggestion(models.Model):
    theme = models.CharField(max_length=200)
    example_ids = models.JSONField(default=list)
    base_version = models.ForeignKey(
        "prompts.PromptVersion", null=True, on_delete=models.SET_NULL, related_name="+"
    )
    draft_version = models.OneToOneField(
        "prompts.PromptVersion", null=True, on_delete=models.SET_NULL, related_name="suggestion"
    )
    rationale = models.TextField(blank=True, default="")
    status = models.CharField(
        max_length=16, choices=SuggestionStatus.choices, default=SuggestionStatus.EVALUATING
    )
    evaluation_run_id = models.PositiveIntegerField(null=True, blank=True)
    baseline_run_id = models.PositiveIntegerField(null=True, blank=True)
    # {"theme_total", "theme_passed", "theme_passed_before", "others_total", "regressions": [ids],
    #  "fixed": [ids]}; gain = fixed - regressions, stored for ranking.
    results = models.JSONField(default=dict, blank=True)
    gain = models.IntegerField(null=True, blank=True)
    error = models.TextField(blank=True, default="")
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        db_table = "training_improvement_suggestions"
        ordering = ["-created_at", "-id"]
        constraints = [
            models.CheckConstraint(
                condition=Q(status__in=SuggestionStatus.values), name="training_suggestion_status_valid"
            )
        ]

    def __str__(self) -> str:
        return f"suggestion #{self.pk}: {self.theme}"
