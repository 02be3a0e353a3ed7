# Indexes behind the inbox's queues and search and the leads list's search (bench/bench_pages.py).
# PostgreSQL only (pg_trgm is in PostgreSQL's contrib); SQLite searches and counts with plain scans.

from django.db import migrations

# Character for character the expression of leads.search.LEAD_SEARCH_SQL, so LIKE '%term%' on it uses the
# trigram index (a bitmap index scan) instead of lower-casing 50k rows per search.
LEAD_SEARCH_INDEX = (
    "CREATE INDEX IF NOT EXISTS lead_search_trgm_idx ON leads USING gin ("
    "(lower(first_name || ' ' || last_name || ' ' || username || ' ' || email || ' ' || phone"
    " || ' ' || manychat_subscriber_id)) gin_trgm_ops)"
)
# Open leads (not converted, not lost) by assignee: the inbox's "all open", "unassigned" and "mine" queues
# and their counts are index-only scans of this partial index instead of counts over every lead.
LEAD_OPEN_INDEX = (
    "CREATE INDEX IF NOT EXISTS lead_open_assignee_idx ON leads "
    "(assignee_id, last_message_at DESC NULLS LAST, id DESC) WHERE status NOT IN ('converted', 'lost')"
)
# The open queues sorted by name (agent.inbox.selectors.SORTS["name"], and "-name" read backwards).
LEAD_OPEN_NAME_INDEX = (
    "CREATE INDEX IF NOT EXISTS lead_open_name_idx ON leads (first_name, last_name, id) "
    "WHERE status NOT IN ('converted', 'lost')"
)


def create(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    schema_editor.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
    schema_editor.execute(LEAD_SEARCH_INDEX)
    schema_editor.execute(LEAD_OPEN_INDEX)
    schema_editor.execute(LEAD_OPEN_NAME_INDEX)


def drop(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    schema_editor.execute("DROP INDEX IF EXISTS lead_search_trgm_idx")
    schema_editor.execute("DROP INDEX IF EXISTS lead_open_assignee_idx")
    schema_editor.execute("DROP INDEX IF EXISTS lead_open_name_idx")


class Migration(migrations.Migration):
    dependencies = [("leads", "0011_lead_followups")]

    operations = [migrations.RunPython(create, drop)]
