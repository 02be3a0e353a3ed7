import subprocess
import sys
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.db import connection
from django.db.migrations.recorder import MigrationRecorder

pytestmark = pytest.mark.django_db

EIGHT = (
    "users",
    "leads",
    "conversations",
    "messages",
    "activities",
    "notifications",
    "prompt_versions",
    "training_examples",
)


def _run() -> tuple[str, bool]:
    out = StringIO()
    try:
        call_command("verify_schema", stdout=out)
        return out.getvalue(), True
    except CommandError:
        return out.getvalue(), False


def test_all_eight_tables_pass_on_a_migrated_database():
    output, ok = _run()
    assert ok
    for table in EIGHT:
        assert f"✅ {table} - 0 rows" in output
    assert "❌" not in output


def test_row_counts_are_reported(make_user):
    make_user("viewer")
    output, ok = _run()
    assert ok
    assert "✅ users - 1 rows" in output


def test_a_dropped_column_is_reported_and_fails():
    # DDL is transactional on PostgreSQL and SQLite, so the test's rollback restores the column.
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute("ALTER TABLE training_examples DROP COLUMN ai_response CASCADE")
            missing = "ai_response"
        else:
            # SQLite cannot drop a column that a CHECK constraint names; drop one that has none.
            cursor.execute("ALTER TABLE training_examples DROP COLUMN review_note")
            missing = "review_note"
    output, ok = _run()
    assert not ok
    assert f"❌ training_examples - missing column {missing}" in output
    assert "✅ leads - 0 rows" in output


def test_a_nullable_column_that_should_not_be_is_reported():
    if connection.vendor != "postgresql":
        pytest.skip("SQLite cannot alter a column's nullability in place")
    with connection.cursor() as cursor:
        cursor.execute("ALTER TABLE training_examples ALTER COLUMN feedback DROP NOT NULL")
    output, ok = _run()
    assert not ok
    assert "column feedback is NULL, expected NOT NULL" in output


def test_a_missing_constraint_is_reported():
    if connection.vendor != "postgresql":
        pytest.skip("SQLite cannot drop a constraint in place")
    with connection.cursor() as cursor:
        cursor.execute("DROP INDEX prompt_one_active_version")
    output, ok = _run()
    assert not ok
    assert "❌ prompt_versions - missing constraint or index prompt_one_active_version" in output


def test_unapplied_migrations_are_reported():
    MigrationRecorder.Migration.objects.filter(app="training", name="0001_initial").delete()
    output, ok = _run()
    assert not ok
    assert "unapplied migrations: training.0001_initial" in output


def test_production_settings_refuse_to_start_without_a_secret_key():
    env = {"DJANGO_DEBUG": "0", "PATH": "/usr/bin:/bin", "DJANGO_SETTINGS_MODULE": "config.settings"}
    result = subprocess.run(
        [sys.executable, "-c", "import django; django.setup()"],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode != 0
    assert "DJANGO_SECRET_KEY must be set" in result.stderr


def test_check_deploy_passes_with_the_documented_production_variables():
    env = {
        "PATH": "/usr/bin:/bin",
        "DJANGO_DEBUG": "0",
        "DJANGO_SECRET_KEY": "k3Jq-9vT_b2Lm8xR4sW7yZ1nC6pF0hD5gA" * 2,
        "DJANGO_ALLOWED_HOSTS": "agent.example.com",
        "MANYCHAT_WEBHOOK_SECRET": "a-long-random-webhook-secret",
        "DATABASE_URL": "sqlite:////tmp/check-deploy.sqlite3",
    }
    result = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout
