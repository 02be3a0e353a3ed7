"""Finding leads by who they are (name, @handle, email, phone, subscriber id) and by words in their messages.

On PostgreSQL each condition is the exact expression of an index that leads/0012_search_indexes creates, so
the planner answers from the index instead of reading every lead or every message:

- who: a pg_trgm GIN index on one lower-cased text of the lead's names, handle, email, phone and subscriber
  id (`lead_search_trgm_idx`); `LIKE '%term%'` on it is a bitmap index scan, not a scan of 50k rows;
- what they wrote: the GIN full-text index on `to_tsvector('simple', text)` (`message_text_fts_idx`,
  leads/0005_inbox), queried with that same expression, so no tsvector is computed per row.

Elsewhere (SQLite) the same expressions run as plain LIKE filters.
"""

from typing import Any

from django.db import connection
from django.db.models import F, Func, QuerySet, TextField

from leads.models import Lead, Message

# Kept in step with LEAD_SEARCH_INDEX in leads/migrations/0012_search_indexes.py, character for character.
LEAD_SEARCH_SQL = (
    "lower({t}.first_name || ' ' || {t}.last_name || ' ' || {t}.username || ' ' || {t}.email"
    " || ' ' || {t}.phone || ' ' || {t}.manychat_subscriber_id)"
)


class LeadSearchText(Func):
    """The lower-cased text a lead is found by (names, handle, email, phone, subscriber id)."""

    output_field = TextField()

    def as_sql(
        self,
        compiler: Any,
        connection: Any,
        function: str | None = None,
        template: str | None = None,
        arg_joiner: str | None = None,
        **extra_context: Any,
    ) -> tuple[str, tuple[str | int, ...]]:
        # The lead table's alias in this query ("leads", or U0 inside a subquery).
        table = compiler.quote_name_unless_alias(compiler.query.get_initial_alias())
        return LEAD_SEARCH_SQL.format(t=table), ()


def search_term(term: str) -> str:
    """The term as typed, spaces collapsed, lower-cased; a leading @ of a handle dropped."""
    return " ".join(term.split()).lstrip("@").lower()


def lead_ids_by_identity(*, term: str) -> QuerySet:
    """Ids of leads whose name, handle, email, phone or subscriber id contains the term (or its digits)."""
    needle = search_term(term)
    leads = Lead.objects.alias(found_by=LeadSearchText())
    condition = leads.filter(found_by__contains=needle)
    digits = "".join(ch for ch in needle if ch.isdigit())
    if len(digits) >= 4 and digits != needle:  # a phone number typed with spaces or dashes
        condition = leads.filter(found_by__contains=needle) | leads.filter(found_by__contains=digits)
    return condition.order_by().values("pk")


def lead_ids_by_message_words(*, term: str) -> QuerySet:
    """Ids of leads with a message holding all the words (full text on PostgreSQL; LIKE elsewhere)."""
    matching: QuerySet[Any]
    if connection.vendor == "postgresql":
        from django.contrib.postgres.search import SearchQuery, SearchVectorField

        # Exactly the expression of message_text_fts_idx, so the planner uses the index.
        vector = Func(
            F("text"), template="to_tsvector('simple', %(expressions)s)", output_field=SearchVectorField()
        )
        matching = Message.objects.annotate(words=vector).filter(words=SearchQuery(term, config="simple"))
    else:
        matching = Message.objects.filter(text__icontains=" ".join(term.split()))
    return matching.order_by().values("conversation__lead_id")
