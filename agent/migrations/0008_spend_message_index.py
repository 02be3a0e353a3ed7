"""The day's and the month's agent spend read from the reply rows by an index-only scan (agent/spend).

The seed of the caps' counters (the agent's replies of one day) and the Spend page (a month, by day and
model) filter agent replies on created_at; without this index both scan every agent reply (400 ms and
900 ms on 1M messages). It lives here, beside the code that reads it, as SQL: the messages table's model
(leads) does not know it, and verify_schema checks only the indexes models declare.
"""

from django.db import migrations

INDEX = "message_agent_time_cost_idx"


def create(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(
            f"CREATE INDEX IF NOT EXISTS {INDEX} ON messages (created_at) "
            "INCLUDE (model, prompt_tokens, completion_tokens) WHERE role = 'agent'"
        )
    else:
        schema_editor.execute(
            f"CREATE INDEX IF NOT EXISTS {INDEX} ON messages (created_at) WHERE role = 'agent'"
        )


def drop(apps, schema_editor):
    schema_editor.execute(f"DROP INDEX IF EXISTS {INDEX}")


class Migration(migrations.Migration):
    dependencies = [
        ("agent", "0007_evaluation_examples_seen"),
        ("leads", "0011_lead_followups"),
    ]

    operations = [migrations.RunPython(create, drop, elidable=False)]
