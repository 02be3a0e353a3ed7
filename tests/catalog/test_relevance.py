"""Which catalog entries go into the model input: all when few, else the best by full-text ranking."""

import pytest
from django.db import connection

from agent.catalog.services import catalog_release
from prompts.catalog.models import CatalogEntry, CatalogVersion
from prompts.catalog.selectors import ENTRY_LIMIT, catalog_block, catalog_entries_for_text
from prompts.catalog.services import catalog_import
from tests.factories import PromptVersionFactory

FILLER_FAQ = [
    {"question": f"Question about topic {n}?", "answer": f"Answer number {n} about topic {n}.", "tags": []}
    for n in range(20)
]
REFUND_FAQ = {"question": "Do you give refunds?", "answer": "Refunds within 14 days of purchase.", "tags": []}


def _release(manager, *, offers=(), faq=()):
    PromptVersionFactory(version=1, is_active=True)
    catalog_import(data={"offers": list(offers), "faq": list(faq)}, user=manager)
    return catalog_release(user=manager, change_note="catalog for relevance").catalog_version


def test_publishing_writes_one_searchable_entry_per_offer_and_faq_entry(manager):
    version = _release(
        manager,
        offers=[{"name": "Starter", "price": "129", "description": "Group coaching"}],
        faq=[REFUND_FAQ],
    )
    entries = {(e.kind, e.position): e.body for e in CatalogEntry.objects.filter(catalog_version=version)}
    assert set(entries) == {("offer", 0), ("faq", 0)}
    assert "Group coaching" in entries[("offer", 0)] and "Refunds within 14 days" in entries[("faq", 0)]


def test_a_small_catalog_goes_whole_without_a_query(manager, django_assert_num_queries):
    version = _release(
        manager,
        offers=[{"name": f"Offer {n}", "price": str(100 + n)} for n in range(3)],
        faq=[REFUND_FAQ, *FILLER_FAQ[:2]],
    )
    version = CatalogVersion.objects.get(pk=version.pk)
    with django_assert_num_queries(0):
        entries = catalog_entries_for_text(catalog_version=version, text="unrelated words")
    assert len(entries["offers"]) == 3 and len(entries["faq"]) == 3


def test_the_faq_entry_sharing_a_stem_is_chosen_among_many(manager):
    """'refunded' shares no word with 'refunds' but the stem: the full-text ranking finds it."""
    if connection.vendor != "postgresql":
        pytest.skip("full-text ranking is PostgreSQL's; SQLite keeps the word-overlap fallback")
    version = _release(manager, faq=[*FILLER_FAQ, REFUND_FAQ])
    entries = catalog_entries_for_text(catalog_version=version, text="Can I get refunded if I don't like it?")
    assert entries["faq"][0]["question"] == REFUND_FAQ["question"]
    assert len(entries["faq"]) <= ENTRY_LIMIT
    assert "Refunds within 14 days" in catalog_block(catalog_version=version, text="can I be refunded?")


def test_among_many_offers_the_matching_one_is_chosen_and_an_expired_one_never(manager):
    offers = [{"name": f"Plan {n}", "price": str(100 + n), "description": "Standard plan"} for n in range(12)]
    offers.append({"name": "Mentoring", "price": "900", "description": "One to one mentoring calls"})
    offers.append(
        {
            "name": "Old mentoring",
            "price": "500",
            "description": "mentoring calls",
            "valid_until": "2020-01-01",
        }
    )
    version = _release(manager, offers=offers)
    entries = catalog_entries_for_text(catalog_version=version, text="tell me about mentoring calls")
    names = [o["name"] for o in entries["offers"]]
    assert names[0] == "Mentoring"
    assert "Old mentoring" not in names
    assert len(names) == ENTRY_LIMIT  # the rest filled in catalog order
