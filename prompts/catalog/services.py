"""Writes to the catalog: edit the working copy, import it, publish it as a version."""

from __future__ import annotations

from typing import Any

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from pydantic import ValidationError as PydanticValidationError

from config.errors import Conflict
from leads.services import activity_record
from prompts.catalog.models import CatalogEntry, CatalogVersion, FaqEntry, Offer
from prompts.catalog.schema import CatalogDocument
from prompts.catalog.selectors import catalog_document, catalog_entry_rows

EDIT_PERM = "prompts.change_offer"
PUBLISH_PERM = "prompts.publish_catalogversion"


def _require(user: Any, perm: str, action: str) -> None:
    if user is None or not user.has_perm(perm):
        raise PermissionDenied(f"Your role may not {action}.")


def catalog_document_parse(*, data: Any) -> CatalogDocument:
    try:
        return CatalogDocument.model_validate(data)
    except PydanticValidationError as exc:
        errors: dict[str, list[str]] = {}
        for error in exc.errors():
            field = ".".join(str(part) for part in error["loc"]) or "non_field_errors"
            errors.setdefault(field, []).append(error["msg"])
        raise ValidationError(errors) from exc


@transaction.atomic
def catalog_import(*, data: Any, user: Any) -> CatalogDocument:
    """Replace the working copy with a document (all or nothing)."""
    _require(user, EDIT_PERM, "edit the catalog")
    document = catalog_document_parse(data=data)
    Offer.objects.all().delete()
    FaqEntry.objects.all().delete()
    Offer.objects.bulk_create(
        Offer(
            **{
                **offer.model_dump(exclude={"booking_url", "payment_url", "info_url"}),
                "booking_url": str(offer.booking_url or ""),
                "payment_url": str(offer.payment_url or ""),
                "info_url": str(offer.info_url or ""),
            }
        )
        for offer in document.offers
    )
    FaqEntry.objects.bulk_create(
        FaqEntry(question=faq.question, answer=faq.answer, tags=",".join(faq.tags)) for faq in document.faq
    )
    activity_record(
        verb="catalog.imported", actor=user, data={"offers": len(document.offers), "faq": len(document.faq)}
    )
    return document


@transaction.atomic
def offer_save(*, user: Any, data: dict[str, Any], offer: Offer | None = None) -> Offer:
    _require(user, EDIT_PERM, "edit the catalog")
    try:
        from prompts.catalog.schema import OfferIn

        parsed = OfferIn.model_validate(data)
    except PydanticValidationError as exc:
        raise ValidationError(
            {".".join(str(p) for p in e["loc"]) or "non_field_errors": e["msg"] for e in exc.errors()}
        ) from exc
    values = parsed.model_dump(exclude={"booking_url", "payment_url", "info_url"})
    values.update(
        booking_url=str(parsed.booking_url or ""),
        payment_url=str(parsed.payment_url or ""),
        info_url=str(parsed.info_url or ""),
    )
    if Offer.objects.filter(name=parsed.name).exclude(pk=getattr(offer, "pk", None)).exists():
        raise ValidationError({"name": "Another offer already has this name."})
    if offer is None:
        offer = Offer.objects.create(**values)
    else:
        for key, value in values.items():
            setattr(offer, key, value)
        offer.save(update_fields=[*values, "updated_at"])
    activity_record(verb="catalog.offer_saved", actor=user, data={"offer_id": offer.pk})
    return offer


@transaction.atomic
def faq_save(
    *, user: Any, question: str, answer: str, tags: str = "", entry: FaqEntry | None = None
) -> FaqEntry:
    _require(user, EDIT_PERM, "edit the catalog")
    errors = {}
    if not question.strip():
        errors["question"] = "A question is required."
    if not answer.strip():
        errors["answer"] = "An answer is required."
    if errors:
        raise ValidationError(errors)
    if entry is None:
        entry = FaqEntry.objects.create(question=question.strip(), answer=answer.strip(), tags=tags.strip())
    else:
        entry.question, entry.answer, entry.tags = question.strip(), answer.strip(), tags.strip()
        entry.save(update_fields=["question", "answer", "tags", "updated_at"])
    return entry


@transaction.atomic
def catalog_entry_delete(*, user: Any, entry: Offer | FaqEntry) -> None:
    _require(user, EDIT_PERM, "edit the catalog")
    entry.delete()


@transaction.atomic
def catalog_version_publish(*, user: Any, change_note: str) -> CatalogVersion:
    """Freeze the working copy into the next catalog version (409 when nothing changed)."""
    _require(user, PUBLISH_PERM, "publish the catalog")
    if not change_note.strip():
        raise ValidationError({"change_note": "Say what changed in the catalog."})
    snapshot = catalog_document().as_json()
    latest = CatalogVersion.objects.select_for_update().order_by("-number").first()
    if latest is not None and latest.snapshot == snapshot:
        raise Conflict(f"The catalog is the same as catalog v{latest.number}.", field="catalog")
    version = CatalogVersion.objects.create(
        number=(latest.number + 1) if latest else 1,
        snapshot=snapshot,
        change_note=change_note.strip()[:500],
        created_by=user,
    )
    CatalogEntry.objects.bulk_create(
        CatalogEntry(catalog_version=version, kind=kind, position=position, body=body)
        for kind, position, body in catalog_entry_rows(snapshot)
    )
    activity_record(verb="catalog.published", actor=user, data={"catalog_version": version.number})
    return version
