"""Daily rollups for insights (training/insights/models.py), and on PostgreSQL the triggers that keep them
exact on every write to training_examples, plus the expression index the median review time walks.

The triggers do nothing until `manage.py insights_rollup_rebuild` has filled the tables and written the state
row (its time zone is the one the days are counted in).
"""

import django.db.models.deletion
import django.db.models.functions.comparison
from django.conf import settings
from django.db import migrations, models

# +1 for a row's values, -1 for its old ones: the same keys the rollups are built with (rollups.py).
APPLY_SQL = """
CREATE OR REPLACE FUNCTION insights_example_apply(r training_examples, sign integer, tz text)
RETURNS void LANGUAGE plpgsql AS $$
DECLARE
    d date := (r.created_at AT TIME ZONE tz)::date;
BEGIN
    INSERT INTO insights_example_days AS t (day, status, example_type, submitted_by_id, n)
    VALUES (d, r.status, r.example_type, r.submitted_by_id, sign)
    ON CONFLICT (day, status, example_type, (COALESCE(submitted_by_id, 0)))
    DO UPDATE SET n = t.n + EXCLUDED.n;
    IF r.approved_at IS NOT NULL AND r.status IN ('approved', 'rejected') THEN
        INSERT INTO insights_decision_days AS t (day, status, decided_by_id, n)
        VALUES ((r.approved_at AT TIME ZONE tz)::date, r.status, r.approved_by_id, sign)
        ON CONFLICT (day, status, (COALESCE(decided_by_id, 0)))
        DO UPDATE SET n = t.n + EXCLUDED.n;
    END IF;
    IF r.example_type IN ('bad', 'correction') THEN
        INSERT INTO insights_feedback_days AS t (day, phrase, example_type, n)
        VALUES (d, lower(trim(substring(r.feedback, 1, 200))), r.example_type, sign)
        ON CONFLICT (day, phrase, example_type)
        DO UPDATE SET n = t.n + EXCLUDED.n;
        IF r.message_id IS NOT NULL THEN
            INSERT INTO insights_flagged_days AS t (day, message_id, n, message_total)
            VALUES (d, r.message_id, sign, 0)
            ON CONFLICT (day, message_id)
            DO UPDATE SET n = t.n + EXCLUDED.n;
            UPDATE insights_flagged_days SET message_total = (
                SELECT SUM(n) FROM insights_flagged_days WHERE message_id = r.message_id
            ) WHERE message_id = r.message_id;
        END IF;
    END IF;
END $$;

CREATE OR REPLACE FUNCTION insights_example_rollup() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    tz text;
BEGIN
    SELECT time_zone INTO tz FROM insights_rollup_state WHERE id = 1;
    IF tz IS NULL THEN
        RETURN NULL;
    END IF;
    IF TG_OP IN ('UPDATE', 'DELETE') THEN
        PERFORM insights_example_apply(OLD, -1, tz);
    END IF;
    IF TG_OP IN ('INSERT', 'UPDATE') THEN
        PERFORM insights_example_apply(NEW, 1, tz);
    END IF;
    RETURN NULL;
END $$;

CREATE TRIGGER insights_example_rollup_write AFTER INSERT OR DELETE ON training_examples
FOR EACH ROW EXECUTE FUNCTION insights_example_rollup();

CREATE TRIGGER insights_example_rollup_update AFTER UPDATE ON training_examples
FOR EACH ROW WHEN (
    (OLD.created_at, OLD.status, OLD.example_type, OLD.submitted_by_id, OLD.approved_at, OLD.approved_by_id,
     OLD.feedback, OLD.message_id)
    IS DISTINCT FROM
    (NEW.created_at, NEW.status, NEW.example_type, NEW.submitted_by_id, NEW.approved_at, NEW.approved_by_id,
     NEW.feedback, NEW.message_id)
) EXECUTE FUNCTION insights_example_rollup();

-- The median review time: the k-th wait in order, read from this index alone (rollups cannot hold a median).
CREATE INDEX IF NOT EXISTS idx_training_review_wait ON training_examples ((approved_at - created_at))
INCLUDE (approved_at, created_at) WHERE status IN ('approved', 'rejected') AND approved_at IS NOT NULL;
"""

DROP_SQL = """
DROP TRIGGER IF EXISTS insights_example_rollup_write ON training_examples;
DROP TRIGGER IF EXISTS insights_example_rollup_update ON training_examples;
DROP FUNCTION IF EXISTS insights_example_rollup();
DROP FUNCTION IF EXISTS insights_example_apply(training_examples, integer, text);
DROP INDEX IF EXISTS idx_training_review_wait;
"""


def install(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(APPLY_SQL)


def uninstall(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(DROP_SQL)


class Migration(migrations.Migration):
    dependencies = [
        ("training", "0006_readable_labels"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.CreateModel(
            name="InsightsRollupState",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                ("time_zone", models.CharField(max_length=64)),
                ("built_at", models.DateTimeField()),
            ],
            options={
                "db_table": "insights_rollup_state",
            },
        ),
        migrations.CreateModel(
            name="InsightsFeedbackDay",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                ("day", models.DateField()),
                ("n", models.IntegerField(default=0)),
                ("phrase", models.TextField()),
                ("example_type", models.CharField(max_length=16)),
            ],
            options={
                "db_table": "insights_feedback_days",
                "constraints": [
                    models.UniqueConstraint(
                        fields=("day", "phrase", "example_type"), name="insights_feedback_day_key"
                    )
                ],
            },
        ),
        migrations.CreateModel(
            name="InsightsFlaggedDay",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                ("day", models.DateField()),
                ("n", models.IntegerField(default=0)),
                ("message_id", models.BigIntegerField()),
                ("message_total", models.IntegerField(default=0)),
            ],
            options={
                "db_table": "insights_flagged_days",
                "indexes": [
                    models.Index(fields=["message_id"], name="insights_flagged_message_idx"),
                    models.Index(
                        condition=models.Q(("message_total", 1), ("n", 1)),
                        fields=["-message_id", "day"],
                        name="insights_flagged_single_idx",
                    ),
                    models.Index(
                        condition=models.Q(("message_total__gt", 1)),
                        fields=["day"],
                        name="insights_flagged_multi_idx",
                    ),
                ],
                "constraints": [
                    models.UniqueConstraint(fields=("day", "message_id"), name="insights_flagged_day_key")
                ],
            },
        ),
        migrations.CreateModel(
            name="InsightsDecisionDay",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                ("day", models.DateField()),
                ("n", models.IntegerField(default=0)),
                ("status", models.CharField(max_length=16)),
                (
                    "decided_by",
                    models.ForeignKey(
                        db_constraint=False,
                        null=True,
                        on_delete=django.db.models.deletion.DO_NOTHING,
                        related_name="+",
                        to=settings.AUTH_USER_MODEL,
                    ),
                ),
            ],
            options={
                "db_table": "insights_decision_days",
                "constraints": [
                    models.UniqueConstraint(
                        models.F("day"),
                        models.F("status"),
                        django.db.models.functions.comparison.Coalesce("decided_by", 0),
                        name="insights_decision_day_key",
                    )
                ],
            },
        ),
        migrations.CreateModel(
            name="InsightsExampleDay",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                ("day", models.DateField()),
                ("n", models.IntegerField(default=0)),
                ("status", models.CharField(max_length=16)),
                ("example_type", models.CharField(max_length=16)),
                (
                    "submitted_by",
                    models.ForeignKey(
                        db_constraint=False,
                        null=True,
                        on_delete=django.db.models.deletion.DO_NOTHING,
                        related_name="+",
                        to=settings.AUTH_USER_MODEL,
                    ),
                ),
            ],
            options={
                "db_table": "insights_example_days",
                "constraints": [
                    models.UniqueConstraint(
                        models.F("day"),
                        models.F("status"),
                        models.F("example_type"),
                        django.db.models.functions.comparison.Coalesce("submitted_by", 0),
                        name="insights_example_day_key",
                    )
                ],
            },
        ),
        migrations.RunPython(install, uninstall),
    ]
