"""The catalog's JSON contract: what import and export read and write, and what a snapshot holds."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

from pydantic import BaseModel, ConfigDict, Field, HttpUrl, field_validator, model_validator


class OfferIn(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    name: str = Field(min_length=1, max_length=200)
    description: str = Field(default="", max_length=5000)
    price: Decimal = Field(ge=0, max_digits=12, decimal_places=2)
    currency: str = Field(default="USD", pattern=r"^[A-Z]{3}$")
    billing_terms: str = Field(default="", max_length=200)
    included: str = Field(default="", max_length=5000)
    booking_url: HttpUrl | None = None
    payment_url: HttpUrl | None = None
    info_url: HttpUrl | None = None
    valid_from: date | None = None
    valid_until: date | None = None

    @field_validator("booking_url", "payment_url", "info_url", mode="before")
    @classmethod
    def _blank_is_none(cls, value: object) -> object:
        return None if value == "" else value

    @model_validator(mode="after")
    def _range(self) -> OfferIn:
        if self.valid_from and self.valid_until and self.valid_until < self.valid_from:
            raise ValueError("valid_until must not be before valid_from")
        return self


class FaqIn(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    question: str = Field(min_length=1, max_length=500)
    answer: str = Field(min_length=1, max_length=5000)
    tags: list[str] = Field(default_factory=list, max_length=20)


class CatalogDocument(BaseModel):
    """`{"offers": [...], "faq": [...]}`: the import/export file and the body of a snapshot."""

    model_config = ConfigDict(extra="forbid")

    offers: list[OfferIn] = Field(default_factory=list, max_length=1000)
    faq: list[FaqIn] = Field(default_factory=list, max_length=2000)

    @model_validator(mode="after")
    def _unique_names(self) -> CatalogDocument:
        names = [offer.name for offer in self.offers]
        if len(names) != len(set(names)):
            raise ValueError("offer names must be unique")
        return self

    def as_json(self) -> dict:
        return self.model_dump(mode="json")
