# Spend that no other row records: evaluation, rehearsal and scoring calls, one row per day and purpose,
# moved with F() by agent.budget.budget_record. The agent's own spend is read from its reply rows.
from django.db import models
from django.db.models import Q


class SpendPurpose(models.TextChoices):
    AGENT = "agent", "Agent replies"
    EVALUATION = "evaluation", "Evaluation"
    REHEARSAL = "rehearsal", "Rehearsal"
    SCORING = "scoring", "Scoring"


class SpendDay(models.Model):
    """Tokens and USD (in millionths, exact under concurrent F() updates) spent on one day for one purpose."""

    day = models.DateField()
    purpose = models.CharField(max_length=16, choices=SpendPurpose.choices)
    prompt_tokens = models.PositiveBigIntegerField(default=0)
    completion_tokens = models.PositiveBigIntegerField(default=0)
    usd_micros = models.PositiveBigIntegerField(default=0)
    calls = models.PositiveIntegerField(default=0)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        db_table = "spend_days"
        ordering = ["-day", "purpose"]
        constraints = [
            models.UniqueConstraint(fields=["day", "purpose"], name="spend_day_purpose_unique"),
            models.CheckConstraint(
                condition=Q(purpose__in=SpendPurpose.values), name="spend_day_purpose_valid"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.purpose} on {self.day}"


class BudgetAlert(models.Model):
    """One row per month and threshold crossed (80, 100): the unique key makes the alert once-only."""

    month = models.DateField()  # the first day of the month
    threshold = models.PositiveSmallIntegerField()
    spent_usd = models.DecimalField(max_digits=14, decimal_places=6)
    budget_usd = models.DecimalField(max_digits=14, decimal_places=2)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        db_table = "spend_budget_alerts"
        ordering = ["-month", "threshold"]
        constraints = [
            models.UniqueConstraint(fields=["month", "threshold"], name="budget_alert_once_per_month"),
            models.CheckConstraint(condition=Q(threshold__in=[80, 100]), name="budget_alert_threshold_valid"),
        ]

    def __str__(self) -> str:
        return f"{self.threshold}% of {self.month:%Y-%m}"
