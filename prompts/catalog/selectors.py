"""Reads of the catalog: the working copy as a document, the version in force, its facts, its diff."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from functools import lru_cache

from django.utils import timezone

from prompts.catalog.grounding import CatalogFacts, Fact, FactKind, catalog_facts, extract_facts
from prompts.catalog.models import CatalogVersion, FaqEntry, Offer
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


def catalog_entries_for_text(*, catalog_version: CatalogVersion, text: str, limit: int = 8) -> dict:
    """The entries to show the model for a lead's message: all offers when few, else the best by overlap."""
    snapshot = catalog_version.snapshot
    offers = offers_current(snapshot)
    faq = snapshot.get("faq", [])
    words = {w.lower() for w in _WORD.findall(text)}

    def score(parts: list[str]) -> int:
        return len(words & {w.lower() for part in parts for w in _WORD.findall(part or "")})

    if len(offers) > limit:
        offers = sorted(
            offers, key=lambda o: -score([o["name"], o.get("description", ""), o.get("included", "")])
        )[:limit]
    faq = sorted(faq, key=lambda f: -score([f["question"], f["answer"], " ".join(f.get("tags", []))]))[:limit]
    return {"offers": offers, "faq": [f for f in faq if score([f["question"], f["answer"]]) > 0] or faq[:2]}


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
