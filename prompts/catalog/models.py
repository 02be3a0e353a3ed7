"""The catalog: the offers, prices, links, dates and FAQ answers the agent may state.

Managers edit a working copy (`Offer`, `FaqEntry`); publishing freezes it into an immutable `CatalogVersion`
(a JSON snapshot) and makes a draft prompt version that carries it, so a catalog change is released, watched
and rolled back exactly like a prompt change: the prompt version in force names the catalog in force.
"""

from django.conf import settings
from django.db import models
from django.db.models import Q


class Offer(models.Model):
    name = models.CharField(max_length=200, unique=True)
    description = models.TextField(blank=True, default="")
    price = models.DecimalField(max_digits=12, decimal_places=2)
    currency = models.CharField(max_length=3, default="USD")
    billing_terms = models.CharField(
        max_length=200, blank=True, default="", help_text="e.g. per month, one-time"
    )
    included = models.TextField(blank=True, default="", help_text="What the offer includes, one item a line.")
    booking_url = models.URLField(max_length=500, blank=True, default="")
    payment_url = models.URLField(max_length=500, blank=True, default="")
    info_url = models.URLField(max_length=500, blank=True, default="")
    valid_from = models.DateField(null=True, blank=True)
    valid_until = models.DateField(null=True, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        db_table = "catalog_offers"
        ordering = ["name"]
        constraints = [
            models.CheckConstraint(condition=Q(price__gte=0), name="catalog_offer_price_not_negative"),
            models.CheckConstraint(condition=~Q(name=""), name="catalog_offer_name_not_empty"),
            models.CheckConstraint(
                condition=Q(currency__regex=r"^[A-Z]{3}$"), name="catalog_offer_currency_iso"
            ),
            models.CheckConstraint(
                condition=Q(valid_from__isnull=True)
                | Q(valid_until__isnull=True)
                | Q(valid_until__gte=models.F("valid_from")),
                name="catalog_offer_valid_range",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.price} {self.currency})"


class FaqEntry(models.Model):
    question = models.CharField(max_length=500)
    answer = models.TextField()
    tags = models.CharField(max_length=200, blank=True, default="", help_text="Comma-separated.")
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        db_table = "catalog_faq_entries"
        ordering = ["question"]
        verbose_name = "FAQ entry"
        verbose_name_plural = "FAQ entries"
        constraints = [
            models.CheckConstraint(condition=~Q(question=""), name="catalog_faq_question_not_empty"),
            models.CheckConstraint(condition=~Q(answer=""), name="catalog_faq_answer_not_empty"),
        ]

    def __str__(self) -> str:
        return self.question


class CatalogVersion(models.Model):
    """An immutable snapshot of the catalog, released with a prompt version."""

    number = models.PositiveIntegerField(unique=True)
    snapshot = models.JSONField()
    change_note = models.CharField(max_length=500)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        db_table = "catalog_versions"
        ordering = ["-number"]
        permissions = [("publish_catalogversion", "Can publish the catalog")]
        constraints = [
            models.CheckConstraint(condition=Q(number__gte=1), name="catalog_version_positive"),
            models.CheckConstraint(condition=~Q(change_note=""), name="catalog_version_note_required"),
        ]

    def __str__(self) -> str:
        return f"Catalog v{self.number}"


class CatalogEntryKind(models.TextChoices):
    OFFER = "offer", "Offer"
    FAQ = "faq", "FAQ entry"


class CatalogEntry(models.Model):
    """One offer or FAQ entry of a catalog version as searchable text (written once, when it is published).

    On PostgreSQL a stored tsvector of `body` (column `search_vector`, migration 0005) with a GIN index ranks
    the entries for a lead's message; `position` points back into the version's snapshot.
    """

    catalog_version = models.ForeignKey(CatalogVersion, on_delete=models.CASCADE, related_name="entries")
    kind = models.CharField(max_length=8, choices=CatalogEntryKind.choices)
    position = models.PositiveIntegerField()
    body = models.TextField()

    class Meta:
        db_table = "catalog_entries"
        verbose_name_plural = "catalog entries"
        constraints = [
            models.UniqueConstraint(
                fields=["catalog_version", "kind", "position"], name="catalog_entry_unique_position"
            ),
            models.CheckConstraint(
                condition=Q(kind__in=CatalogEntryKind.values), name="catalog_entry_kind_valid"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} {self.position + 1} of catalog v{self.catalog_version_id}"
