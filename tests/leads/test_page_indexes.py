"""The queries behind the pages match their indexes exactly (PostgreSQL).

An expression or partial index helps only if the query spells the same expression or implies the same
predicate; a harmless-looking change to a selector (a Concat instead of ||, UPPER instead of lower, a CASE
with other values) silently turns an index scan back into a scan of every row. With sequential scans
disabled, the planner must use the named index if the query can use it at all: these tests fail when a
selector and its index drift apart. The figures are in bench/bench_pages.py.
"""

import pytest
from django.db import connection

from agent.inbox import selectors as inbox
from leads.search import LEAD_SEARCH_SQL, lead_ids_by_identity, lead_ids_by_message_words
from tests.factories import LeadFactory, MessageFactory, TrainingExampleFactory
from training.models import ExampleStatus
from training.review import selectors as review

pytestmark = [
    pytest.mark.django_db,
    pytest.mark.skipif(connection.vendor != "postgresql", reason="these indexes exist on PostgreSQL only"),
]


def plan(queryset_or_sql, params=(), *, bitmap_only: bool = False, ordered: bool = False) -> str:
    with connection.cursor() as cursor:
        cursor.execute("SET LOCAL enable_seqscan = off")
        # For a page in an order: with sorts off too, the order must come from an index that holds it.
        cursor.execute(f"SET LOCAL enable_sort = {'off' if ordered else 'on'}")
        cursor.execute(f"SET LOCAL enable_incremental_sort = {'off' if ordered else 'on'}")
        # A GIN index is read by bitmap scans only; on a few test rows a full primary-key scan is cheaper
        # unless plain index scans are off too.
        cursor.execute(f"SET LOCAL enable_indexscan = {'off' if bitmap_only else 'on'}")
        if isinstance(queryset_or_sql, str):
            cursor.execute("EXPLAIN " + queryset_or_sql, params)
            return "\n".join(row[0] for row in cursor.fetchall())
    return queryset_or_sql.explain()


@pytest.fixture
def data(operator):
    for i in range(5):
        lead = LeadFactory(first_name=f"Sofia{i}", assignee=operator if i % 2 else None)
        MessageFactory(conversation__lead=lead, text=f"tiramisu classes number {i}")
        TrainingExampleFactory(status=ExampleStatus.PENDING)


def test_the_review_queue_reads_its_order_off_the_expression_index(data):
    queryset = review.review_queue(filters=review.ExampleFilters(status="all"))[:20]
    assert "training_review_order_idx" in plan(queryset, ordered=True)


def test_the_library_reads_its_order_off_its_index(data):
    queryset = review.library_examples(filters=review.ExampleFilters(status="", retired=False))[:20]
    assert "training_library_order_idx" in plan(queryset, ordered=True)


@pytest.mark.parametrize("term", ["Sofia3", "@sofia", "example.com", "Sofia3 Rossi", "+39 333-1234"])
def test_searching_a_lead_by_who_it_is_uses_the_trigram_index(data, term):
    # The id subquery the inbox and the leads list filter by (on a few rows the planner may probe it by
    # primary key from the outer query instead, so the subquery is planned on its own here).
    assert "lead_search_trgm_idx" in plan(lead_ids_by_identity(term=term), bitmap_only=True)


def test_searching_message_words_uses_the_full_text_index(data):
    assert "message_text_fts_idx" in plan(
        lead_ids_by_message_words(term="tiramisu classes"), bitmap_only=True
    )


def test_the_queue_counts_are_partial_index_scans(data, operator):
    with connection.cursor() as cursor:
        cursor.execute("SET LOCAL enable_seqscan = off")
    # inbox_counts runs one UNION ALL; its plan names both partial indexes.
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as captured:
        counts = inbox.inbox_counts(user=operator)
    assert counts == {"needs_person": 0, "mine": 2, "unassigned": 3, "open": 5}
    text = plan(captured.captured_queries[-1]["sql"])
    assert "lead_waiting_idx" in text
    # either partial index of the open leads (both hold exactly them); never the whole table
    assert "lead_open_assignee_idx" in text or "lead_open_name_idx" in text


@pytest.mark.parametrize("sort", ["name", "-name"])
def test_an_open_queue_sorted_by_name_walks_the_name_index(data, operator, sort):
    found = inbox.inbox_queue(queue=inbox.Queue.OPEN, user=operator, filters=inbox.InboxFilters(sort=sort))
    assert "lead_open_name_idx" in plan(found[:25], ordered=True)


def test_the_search_expression_is_the_indexed_one():
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_get_indexdef('lead_search_trgm_idx'::regclass)")
        definition = cursor.fetchone()[0]
    for column in ("first_name", "last_name", "username", "email", "phone", "manychat_subscriber_id"):
        assert column in definition and f"{{t}}.{column}" in LEAD_SEARCH_SQL
