"""Writes to the insights rollups: the rebuild from the base table.

Day to day the rollups need no writes from Python: PostgreSQL triggers on training_examples (migration
training 0007) apply each insert, update and delete to them in the same statement, so they equal the base
table at every commit. The rebuild fills them from scratch (the first time, after a restore, or after the
project's TIME_ZONE changed) under a lock that holds writers back, then records the time zone the days are
counted in; insights reads the rollups only while that is the time zone of the request.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from training.insights.models import InsightsRollupState

# One INSERT ... SELECT per rollup, with the same keys the triggers use. %(tz)s is the day's time zone.
REBUILD_SQL: list[tuple[str, str]] = [
    (
        "insights_example_days",
        "INSERT INTO insights_example_days (day, status, example_type, submitted_by_id, n) "
        "SELECT (created_at AT TIME ZONE %(tz)s)::date, status, example_type, submitted_by_id, COUNT(*) "
        "FROM training_examples GROUP BY 1, 2, 3, 4",
    ),
    (
        "insights_decision_days",
        "INSERT INTO insights_decision_days (day, status, decided_by_id, n) "
        "SELECT (approved_at AT TIME ZONE %(tz)s)::date, status, approved_by_id, COUNT(*) "
        "FROM training_examples WHERE approved_at IS NOT NULL AND status IN ('approved', 'rejected') "
        "GROUP BY 1, 2, 3",
    ),
    (
        "insights_feedback_days",
        "INSERT INTO insights_feedback_days (day, phrase, example_type, n) "
        "SELECT (created_at AT TIME ZONE %(tz)s)::date, lower(trim(substring(feedback, 1, 200))), "
        "example_type, COUNT(*) FROM training_examples WHERE example_type IN ('bad', 'correction') "
        "GROUP BY 1, 2, 3",
    ),
    (
        "insights_flagged_days",
        "INSERT INTO insights_flagged_days (day, message_id, n, message_total) "
        "SELECT (created_at AT TIME ZONE %(tz)s)::date, message_id, COUNT(*), "
        "SUM(COUNT(*)) OVER (PARTITION BY message_id) FROM training_examples "
        "WHERE example_type IN ('bad', 'correction') AND message_id IS NOT NULL GROUP BY 1, 2",
    ),
]


class RollupsUnsupported(Exception):
    """The rollups are kept by PostgreSQL triggers; other databases read the base tables."""


@transaction.atomic
def insights_rollup_rebuild(*, progress: Callable[[str], None] | None = None) -> dict[str, int]:
    """Refill every rollup from training_examples in one transaction; returns the rows written per table.

    Writers to training_examples wait for the lock (SHARE ROW EXCLUSIVE blocks inserts, updates and
    deletes, not reads), so no write can fall between the refill and the state row the triggers read.
    """
    if connection.vendor != "postgresql":
        raise RollupsUnsupported("The insights rollups need PostgreSQL (their triggers are PL/pgSQL).")
    say = progress or (lambda _line: None)
    tz = settings.TIME_ZONE
    written: dict[str, int] = {}
    with connection.cursor() as cursor:
        cursor.execute("LOCK TABLE training_examples IN SHARE ROW EXCLUSIVE MODE")
        # The triggers skip work while no state row exists; the refill below is the whole truth.
        InsightsRollupState.objects.all().delete()
        cursor.execute(
            "TRUNCATE insights_example_days, insights_decision_days, insights_feedback_days, "
            "insights_flagged_days"
        )
        for table, sql in REBUILD_SQL:
            started = time.perf_counter()
            cursor.execute(sql, {"tz": tz})
            written[table] = cursor.rowcount
            say(f"{table}: {cursor.rowcount:,} rows in {(time.perf_counter() - started) * 1000:,.0f} ms")
        InsightsRollupState.objects.create(id=1, time_zone=tz, built_at=timezone.now())
        cursor.execute(
            "ANALYZE insights_example_days, insights_decision_days, insights_feedback_days, "
            "insights_flagged_days"
        )
    say(f"rollups built, days in {tz}")
    return written
