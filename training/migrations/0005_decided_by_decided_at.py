"""TrainingExample.approved_by/approved_at hold rejections too: the fields become decided_by/decided_at.

State only: the columns keep the old system's names (approved_by_id, approved_at) through db_column, so
the database, its CHECK constraint and its index do not change; verify_schema still matches the schema the
old system reads.
"""

import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models

DECIDED_HAS_TIME = models.CheckConstraint(
    condition=models.Q(
        models.Q(("status", "pending"), ("decided_at__isnull", True)),
        models.Q(models.Q(("status", "pending"), _negated=True), ("decided_at__isnull", False)),
        _connector="OR",
    ),
    name="training_decided_has_time",
)
INSIGHTS_DECIDED = models.Index(
    fields=["decided_at", "status", "created_at", "decided_by", "message"],
    name="idx_training_insights_decided",
)


class Migration(migrations.Migration):
    dependencies = [
        ("training", "0004_retrieval_lifecycle"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            database_operations=[],
            state_operations=[
                migrations.RemoveConstraint(model_name="trainingexample", name="training_decided_has_time"),
                migrations.RemoveIndex(model_name="trainingexample", name="idx_training_insights_decided"),
                migrations.RenameField(
                    model_name="trainingexample", old_name="approved_by", new_name="decided_by"
                ),
                migrations.RenameField(
                    model_name="trainingexample", old_name="approved_at", new_name="decided_at"
                ),
                migrations.AlterField(
                    model_name="trainingexample",
                    name="decided_by",
                    field=models.ForeignKey(
                        blank=True,
                        db_column="approved_by_id",
                        null=True,
                        on_delete=django.db.models.deletion.SET_NULL,
                        related_name="reviewed_examples",
                        to=settings.AUTH_USER_MODEL,
                    ),
                ),
                migrations.AlterField(
                    model_name="trainingexample",
                    name="decided_at",
                    field=models.DateTimeField(blank=True, db_column="approved_at", null=True),
                ),
                migrations.AddConstraint(model_name="trainingexample", constraint=DECIDED_HAS_TIME),
                migrations.AddIndex(model_name="trainingexample", index=INSIGHTS_DECIDED),
            ],
        ),
    ]
