"""Daily rollups of the training examples for insights, kept exact by the database on every write.

One row per local day (the project's TIME_ZONE when the rollups were built, kept in InsightsRollupState) and
per key, holding a count. On PostgreSQL, triggers on training_examples add +1 for a row's new values and -1
for its old ones inside the writing statement (training/insights/rollups.py), so every write path (the
services, the admin, cascades and SET NULLs, lead_forget, raw SQL) keeps them equal to the base table. The
rollups are rebuilt from the base table by `manage.py insights_rollup_rebuild`. Elsewhere (SQLite) there are
no triggers: the state row is never written and insights reads the base tables.
"""

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.db.models.functions import Coalesce


class InsightsRollupState(models.Model):
    """One row (id 1) once the rollups are built: the time zone their days are in, and when."""

    time_zone = models.CharField(max_length=64)
    built_at = models.DateTimeField()

    class Meta:
        db_table = "insights_rollup_state"

    def __str__(self) -> str:
        return f"insights rollups in {self.time_zone}, built {self.built_at:%Y-%m-%d %H:%M}"


class _DayCount(models.Model):
    day = models.DateField()
    n = models.IntegerField(default=0)

    class Meta:
        abstract = True

    def __str__(self) -> str:
        return f"{self.day}: {self.n}"


class InsightsExampleDay(_DayCount):
    """Examples submitted per day (created_at) and per status, type and submitter."""

    status = models.CharField(max_length=16)
    example_type = models.CharField(max_length=16)
    submitted_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        on_delete=models.DO_NOTHING,
        db_constraint=False,
        related_name="+",
    )

    class Meta:
        db_table = "insights_example_days"
        constraints = [
            models.UniqueConstraint(
                "day", "status", "example_type", Coalesce("submitted_by", 0), name="insights_example_day_key"
            )
        ]


class InsightsDecisionDay(_DayCount):
    """Decisions per day (decided_at) and per outcome and reviewer."""

    status = models.CharField(max_length=16)
    decided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        on_delete=models.DO_NOTHING,
        db_constraint=False,
        related_name="+",
    )

    class Meta:
        db_table = "insights_decision_days"
        constraints = [
            models.UniqueConstraint(
                "day", "status", Coalesce("decided_by", 0), name="insights_decision_day_key"
            )
        ]


class InsightsFeedbackDay(_DayCount):
    """Bad and correction examples per day and per feedback phrase (its first 200 characters, lowercased and
    trimmed: the key insights compares them by)."""

    phrase = models.TextField()
    example_type = models.CharField(max_length=16)

    class Meta:
        db_table = "insights_feedback_days"
        constraints = [
            models.UniqueConstraint(
                fields=["day", "phrase", "example_type"], name="insights_feedback_day_key"
            )
        ]


class InsightsFlaggedDay(_DayCount):
    """Bad and correction examples per day and per agent reply they flag. `message_total` is the reply's flags
    over all days (the same on each of its rows): most replies are flagged once, and the top list reads
    those from an index in message order instead of summing every reply of the range."""

    message_id = models.BigIntegerField()
    message_total = models.IntegerField(default=0)

    class Meta:
        db_table = "insights_flagged_days"
        constraints = [models.UniqueConstraint(fields=["day", "message_id"], name="insights_flagged_day_key")]
        indexes = [
            models.Index(fields=["message_id"], name="insights_flagged_message_idx"),
            models.Index(
                fields=["-message_id", "day"],
                condition=Q(message_total=1, n=1),
                name="insights_flagged_single_idx",
            ),
            models.Index(fields=["day"], condition=Q(message_total__gt=1), name="insights_flagged_multi_idx"),
        ]
