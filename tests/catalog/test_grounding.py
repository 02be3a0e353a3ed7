"""Grounding a reply against the catalog: what counts as a fact, and what matches."""

from datetime import date
from decimal import Decimal

import pytest

from prompts.catalog.grounding import (
    FactKind,
    catalog_facts,
    extract_facts,
    ground_reply,
    parse_number,
    parse_number_words,
)

CATALOG = catalog_facts(
    texts=[
        "Starter coaching, 129 a month. Book a call at https://cal.com/acme/intro",
        "Premium: 2000 EUR one-time, pay at https://pay.acme.example/premium",
        "Yearly plans save 20%. Questions? Call +34 611 222 333.",
    ],
    prices=[Decimal("129"), Decimal("2000")],
    dates=[date(2026, 12, 31)],
)


def _ungrounded(reply: str, **kwargs) -> list[str]:
    return [fact.text for fact in ground_reply(reply=reply, catalog=CATALOG, **kwargs).ungrounded]


@pytest.mark.parametrize(
    "reply",
    [
        "Starter is $129 a month.",
        "It's 129 USD per month",
        "Premium is 2k",
        "Premium is 2.000 €",
        "Premium is 2,000 euros",
        "Premium costs two thousand euros",
        "premium is dos mil euros",
        "Book here: https://cal.com/acme/intro/",
        "Book here: HTTPS://WWW.CAL.COM/acme/intro.",
        "Yearly saves 20 %",
        "Call us on +34 611-222-333",
        "The offer runs until December 31st",
        "The offer runs until 31/12/2026",
        "We meet 3 times a week for 45 minutes",
    ],
)
def test_facts_the_catalog_holds_are_grounded_however_they_are_written(reply):
    assert _ungrounded(reply) == []


@pytest.mark.parametrize(
    ("reply", "fact"),
    [
        ("Starter is $149 a month.", "$149"),
        ("Good news: 30% off today", "30%"),
        ("Pay here https://evil.example/pay", "https://evil.example/pay"),
        ("Premium is 2.500 €", "2.500 €"),
        ("Premium is three thousand dollars", "three thousand"),
        ("Call 0800 123 4567 now", "0800 123 4567"),
        ("The discount ends March 3", "March 3"),
    ],
)
def test_an_invented_fact_is_caught_and_named(reply, fact):
    assert fact in _ungrounded(reply)


def test_the_lead_own_numbers_may_be_repeated_back():
    assert _ungrounded("A budget of 3,400 a month works", context_texts=["my budget is 3.400 a month"]) == []
    assert _ungrounded("A budget of 3,400 a month works") == ["3,400 a month"]


def test_numbers_inside_a_link_are_not_amounts():
    facts = extract_facts("See https://cal.com/acme/intro?slot=2026-01-05&price=999")
    assert [f.kind for f in facts] == [FactKind.URL]


@pytest.mark.parametrize(
    ("written", "value"),
    [
        ("2,000", 2000),
        ("2.000", 2000),
        ("2 000", 2000),
        ("1.299,50", "1299.50"),
        ("129.99", "129.99"),
        ("1,5", "1.5"),
    ],
)
def test_numbers_in_either_convention(written, value):
    assert parse_number(written) == Decimal(str(value))


@pytest.mark.parametrize(
    ("words", "value"),
    [
        ("two thousand", 2000),
        ("one hundred and twenty-nine", 129),
        ("dos mil quinientos", 2500),
        ("ciento veinte", 120),
    ],
)
def test_numbers_written_out(words, value):
    assert parse_number_words(words) == value
