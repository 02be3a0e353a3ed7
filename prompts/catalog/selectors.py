"""Reads of the catalog: the working copy as a document, the version in force, its facts, its diff."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from functools import lru_cache

from django.db import connection
from django.db.models import Count, Max
from django.utils import timezone

from leads.models import Message, MessageRole
from prompts.catalog.grounding import (
    REFUSAL_NOTE_PREFIX,
    CatalogFacts,
    Fact,
    FactKind,
    catalog_facts,
    extract_facts,
)
from prompts.catalog.models import CatalogEntryKind, CatalogVersion, FaqEntry, Offer
from prompts.catalog.schema import CatalogDocument, FaqIn, OfferIn
from prompts.models import PromptVersion


def catalog_document() -> CatalogDocument:
    offers = [
        OfferIn(
            name=o.name,
            description=o.description,
            price=o.price,
            currency=o.currency,
            billing_terms=o.billing_terms,
            included=o.included,
            booking_url=o.booking_url or None,
            payment_url=o.payment_url or None,
            info_url=o.info_url or None,
            valid_from=o.valid_from,
            valid_until=o.valid_until,
        )
        for o in Offer.objects.order_by("name")
    ]
    faq = [
        FaqIn(question=f.question, answer=f.answer, tags=[t.strip() for t in f.tags.split(",") if t.strip()])
        for f in FaqEntry.objects.order_by("question", "id")
    ]
    return CatalogDocument(offers=offers, faq=faq)


def catalog_version_in_force() -> CatalogVersion | None:
    """The catalog released with the active prompt version (None: no catalog, grounding is off)."""
    version = (
        PromptVersion.objects.filter(is_active=True)
        .select_related("catalog_version")
        .only("catalog_version")
        .first()
    )
    return version.catalog_version if version is not None else None


def catalog_version_for(*, prompt_version: PromptVersion | None) -> CatalogVersion | None:
    if prompt_version is None or prompt_version.catalog_version_id is None:
        return None
    return CatalogVersion.objects.get(pk=prompt_version.catalog_version_id)


def _offer_texts(offer: dict) -> list[str]:
    return [
        offer.get("description", ""),
        offer.get("billing_terms", ""),
        offer.get("included", ""),
        *(offer.get(key) or "" for key in ("booking_url", "payment_url", "info_url")),
    ]


def offers_current(snapshot: dict, *, today: date | None = None) -> list[dict]:
    """The snapshot's offers that are valid today: an expired or future offer is not stated."""
    today = today or timezone.localdate()
    current = []
    for offer in snapshot.get("offers", []):
        if offer.get("valid_from") and date.fromisoformat(offer["valid_from"]) > today:
            continue
        if offer.get("valid_until") and date.fromisoformat(offer["valid_until"]) < today:
            continue
        current.append(offer)
    return current


def _snapshot_facts(snapshot: dict, *, today: date | None = None) -> CatalogFacts:
    texts: list[str] = []
    prices: list[Decimal] = []
    dates = []
    for offer in offers_current(snapshot, today=today):
        texts.extend(_offer_texts(offer))
        prices.append(Decimal(str(offer["price"])))
        for key in ("valid_from", "valid_until"):
            if offer.get(key):
                dates.append(date.fromisoformat(offer[key]))
    for entry in snapshot.get("faq", []):
        texts.extend([entry.get("question", ""), entry.get("answer", "")])
    return catalog_facts(texts=texts, prices=prices, dates=dates)


@lru_cache(maxsize=32)
def _facts_cached(version_id: int, today: date) -> CatalogFacts:
    # A catalog version is immutable and offers expire by the day: (version, day) never goes stale.
    snapshot = CatalogVersion.objects.values_list("snapshot", flat=True).get(pk=version_id)
    return _snapshot_facts(snapshot, today=today)


def catalog_facts_for(*, catalog_version: CatalogVersion) -> CatalogFacts:
    return _facts_cached(catalog_version.pk, timezone.localdate())


@dataclass(frozen=True)
class CatalogChange:
    old_fact: Fact
    new_text: str  # what the new catalog says instead, where it can be told ("" when the fact was removed)


def catalog_changes(*, old: CatalogVersion | None, new: CatalogVersion) -> list[CatalogChange]:
    """Facts stated by the old catalog that the new one no longer holds, with the replacing text if any."""
    if old is None:
        return []
    new_facts = _snapshot_facts(new.snapshot)
    new_offers = {offer["name"]: offer for offer in new.snapshot.get("offers", [])}
    changes: list[CatalogChange] = []
    seen: set[tuple[str, str]] = set()
    for offer in old.snapshot.get("offers", []):
        replacement = new_offers.get(offer["name"])
        price_text = f"{_plain(offer['price'])} {offer.get('currency', '')}".strip()
        price_fact = Fact(kind=FactKind.AMOUNT, value=_plain(offer["price"]), text=price_text)
        candidates = [price_fact, *(f for text in _offer_texts(offer) for f in extract_facts(text))]
        for fact in candidates:
            if new_facts.holds(fact) or (fact.kind, fact.value) in seen:
                continue
            seen.add((fact.kind, fact.value))
            new_text = ""
            if replacement is not None and fact is price_fact:
                new_text = f"{_plain(replacement['price'])} {replacement.get('currency', '')}".strip()
            changes.append(CatalogChange(old_fact=fact, new_text=new_text))
    for entry in old.snapshot.get("faq", []):
        for fact in extract_facts(entry.get("answer", "")):
            if not new_facts.holds(fact) and (fact.kind, fact.value) not in seen:
                seen.add((fact.kind, fact.value))
                changes.append(CatalogChange(old_fact=fact, new_text=""))
    return changes


def _plain(price: object) -> str:
    value = Decimal(str(price))
    return format(value.normalize(), "f") if value == value.to_integral() else format(value, "f")


_WORD = re.compile(r"\w{3,}", re.UNICODE)
_QUERY_WORD = re.compile(r"[^\W_]{2,}", re.UNICODE)
# How many entries of each kind go into the model input; with no more than this many, all of them go.
ENTRY_LIMIT = 8
# PostgreSQL: the entries of one catalog version that match the lead's words, best first (ts_rank_cd over the
# stored English + simple tsvector of migration 0005; the OR of the words, so one shared stem is enough).
ENTRY_SEARCH_SQL = (
    "SELECT kind, position, ts_rank_cd(search_vector, q) AS score "
    "FROM catalog_entries, (SELECT to_tsquery('english', %(terms)s) || to_tsquery('simple', %(terms)s) AS q) "
    "AS query WHERE catalog_version_id = %(version)s AND search_vector @@ q "
    "ORDER BY score DESC, kind, position LIMIT %(limit)s"
)


def catalog_entry_rows(snapshot: dict) -> list[tuple[str, int, str]]:
    """(kind, position in the snapshot, searchable text) for each offer and FAQ entry of a snapshot."""
    rows: list[tuple[str, int, str]] = []
    for position, offer in enumerate(snapshot.get("offers", [])):
        parts = [offer.get(key) or "" for key in ("name", "description", "billing_terms", "included")]
        rows.append((CatalogEntryKind.OFFER, position, "\n".join(p for p in parts if p)))
    for position, entry in enumerate(snapshot.get("faq", [])):
        parts = [entry.get("question", ""), entry.get("answer", ""), " ".join(entry.get("tags", []))]
        rows.append((CatalogEntryKind.FAQ, position, "\n".join(p for p in parts if p)))
    return rows


def _ranked_positions(*, catalog_version: CatalogVersion, text: str, limit: int) -> dict[str, list[int]]:
    """PostgreSQL full-text ranking of the version's entries for `text`: positions per kind, best first."""
    terms = sorted({w.lower() for w in _QUERY_WORD.findall(text)})[:64]
    ranked: dict[str, list[int]] = {CatalogEntryKind.OFFER: [], CatalogEntryKind.FAQ: []}
    if not terms:
        return ranked
    with connection.cursor() as cursor:
        cursor.execute(
            ENTRY_SEARCH_SQL, {"terms": " | ".join(terms), "version": catalog_version.pk, "limit": limit * 4}
        )
        for kind, position, _score in cursor.fetchall():
            ranked[kind].append(position)
    return ranked


def _overlap_positions(*, entries: list[tuple[int, list[str]]], text: str) -> list[int]:
    """The fallback (SQLite): positions of entries sharing a word with `text`, most shared words first."""
    words = {w.lower() for w in _WORD.findall(text)}
    scored = []
    for position, parts in entries:
        shared = len(words & {w.lower() for part in parts for w in _WORD.findall(part or "")})
        if shared:
            scored.append((-shared, position))
    return [position for _, position in sorted(scored)]


def catalog_entries_for_text(*, catalog_version: CatalogVersion, text: str, limit: int = ENTRY_LIMIT) -> dict:
    """The entries to show the model for a lead's message.

    Few entries of a kind (at most `limit`): all of them. More: the best `limit` for the message by
    PostgreSQL full-text ranking (language-aware stems plus `simple` lexemes), word overlap on SQLite; offers
    that match nothing fill up in catalog order, and the first two FAQ entries stand in when none matches.
    """
    snapshot = catalog_version.snapshot
    current = {id(offer) for offer in offers_current(snapshot)}
    offers = [(p, o) for p, o in enumerate(snapshot.get("offers", [])) if id(o) in current]
    faq = list(enumerate(snapshot.get("faq", [])))
    if len(offers) <= limit and len(faq) <= limit:
        return {"offers": [o for _, o in offers], "faq": [f for _, f in faq]}
    if connection.vendor == "postgresql":
        ranked = _ranked_positions(catalog_version=catalog_version, text=text, limit=limit)
        offer_order, faq_order = ranked[CatalogEntryKind.OFFER], ranked[CatalogEntryKind.FAQ]
    else:
        offer_order = _overlap_positions(
            entries=[(p, [o["name"], o.get("description", ""), o.get("included", "")]) for p, o in offers],
            text=text,
        )
        faq_order = _overlap_positions(
            entries=[(p, [f["question"], f["answer"], " ".join(f.get("tags", []))]) for p, f in faq],
            text=text,
        )
    chosen_offers = [o for _, o in offers]
    if len(offers) > limit:
        by_position = dict(offers)
        picked = [p for p in offer_order if p in by_position][:limit]
        picked += [p for p, _ in offers if p not in picked][: limit - len(picked)]
        chosen_offers = [by_position[p] for p in picked]
    chosen_faq = [f for _, f in faq]
    if len(faq) > limit:
        by_position = dict(faq)
        chosen_faq = [by_position[p] for p in faq_order if p in by_position][:limit] or chosen_faq[:2]
    return {"offers": chosen_offers, "faq": chosen_faq}


def catalog_block(*, catalog_version: CatalogVersion, text: str) -> str:
    """The model-input section: the only prices, links and dates the agent may state."""
    entries = catalog_entries_for_text(catalog_version=catalog_version, text=text)
    lines = [
        f"FACTS YOU MAY STATE (catalog v{catalog_version.number}). These are the only prices, amounts, "
        "percentages, dates, links and phone numbers you may mention. If the lead asks for something that is "
        "not here, say a person from the team will confirm it; never guess.",
    ]
    for offer in entries["offers"]:
        terms = f"{offer.get('currency', '')} {offer.get('billing_terms', '')}"
        price = f"{_plain(offer['price'])} {terms}".rstrip()
        parts = [f"- Offer: {offer['name']}: {price}"]
        for key, label in (("description", "About"), ("included", "Includes")):
            if offer.get(key):
                parts.append(f"  {label}: {offer[key]}")
        for key, label in (("booking_url", "Book"), ("payment_url", "Pay"), ("info_url", "Info")):
            if offer.get(key):
                parts.append(f"  {label}: {offer[key]}")
        if offer.get("valid_until"):
            parts.append(f"  Valid until {offer['valid_until']}")
        lines.extend(parts)
    for entry in entries["faq"]:
        lines.append(f"- Q: {entry['question']}\n  A: {entry['answer']}")
    return "\n".join(lines)


def catalog_refusals_per_version(
    *, since: datetime, until: datetime, prompt_version_id: int | None = None
) -> list[dict]:
    """Per prompt version: the agent's replies held back in [since, until) because they stated a fact not in
    the catalog (the lead got the safe line and a person), with the last fact refused."""
    qs = Message.objects.filter(
        role=MessageRole.AGENT,
        error__startswith=REFUSAL_NOTE_PREFIX,
        created_at__gte=since,
        created_at__lt=until,
    )
    if prompt_version_id is not None:
        qs = qs.filter(prompt_version_id=prompt_version_id)
    rows = (
        qs.values("prompt_version_id", "prompt_version__version")
        .annotate(refused=Count("id"), last_at=Max("created_at"))
        .order_by("prompt_version__version")
    )
    return [
        {
            "prompt_version_id": row["prompt_version_id"],
            "version": row["prompt_version__version"],
            "refused": row["refused"],
            "last_at": row["last_at"],
        }
        for row in rows
    ]
