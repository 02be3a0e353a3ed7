"""Grounding: every price, amount, percentage, date, URL and phone number in a reply comes from the catalog.

Pure functions over text, no database: `catalog_facts(...)` turns a catalog snapshot into sets of normalised
facts once per catalog version; `ground_reply(...)` extracts the facts a reply states and returns those the
catalog (or the lead's own words, which the agent may repeat back) does not hold.

Normalisation, so the same fact written another way still matches:
- amounts: currency symbols and codes either side, thousands separators in either convention ("2,000",
  "2.000", "2 000", "1.299,50"), "2k" / "2.5k", and numbers written out in English and Spanish ("two
  thousand", "dos mil");
- percentages: "20%", "20 %", "20 percent", "20 por ciento";
- dates: ISO, day/month/year, and month names in English and Spanish, compared as (month, day);
- URLs: scheme, "www.", letter case of the host and a trailing slash or punctuation ignored;
- phone numbers: digits only (8 or more).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from enum import StrEnum

# The note on a stored reply the grounding check held back (leads.Message.error); insights count these per
# version by this prefix (a partial index on PostgreSQL, prompts migration 0005).
REFUSAL_NOTE_PREFIX = "Not sent as written: facts not in the catalog: "


class FactKind(StrEnum):
    AMOUNT = "amount"
    PERCENT = "percent"
    DATE = "date"
    URL = "url"
    PHONE = "phone"


@dataclass(frozen=True)
class Fact:
    kind: FactKind
    value: str  # normalised
    text: str  # as written


@dataclass(frozen=True)
class CatalogFacts:
    amounts: frozenset[Decimal] = frozenset()
    percents: frozenset[Decimal] = frozenset()
    dates: frozenset[tuple[int, int]] = frozenset()
    urls: frozenset[str] = frozenset()
    phones: frozenset[str] = frozenset()

    def holds(self, fact: Fact) -> bool:
        if fact.kind is FactKind.AMOUNT:
            return Decimal(fact.value) in self.amounts
        if fact.kind is FactKind.PERCENT:
            return Decimal(fact.value) in self.percents
        if fact.kind is FactKind.DATE:
            month, day = (int(part) for part in fact.value.split("-"))
            return (month, day) in self.dates
        if fact.kind is FactKind.URL:
            return fact.value in self.urls or any(fact.value.startswith(url + "/") for url in self.urls)
        return fact.value in self.phones


@dataclass(frozen=True)
class GroundingResult:
    ungrounded: tuple[Fact, ...] = field(default_factory=tuple)

    @property
    def ok(self) -> bool:
        return not self.ungrounded

    def describe(self) -> str:
        return "; ".join(f"{fact.kind.value} {fact.text!r}" for fact in self.ungrounded)


# --- numbers -----------------------------------------------------------------------------------------------

_WORDS_EN = {
    "zero": 0, "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7, "eight": 8,
    "nine": 9, "ten": 10, "eleven": 11, "twelve": 12, "thirteen": 13, "fourteen": 14, "fifteen": 15,
    "sixteen": 16, "seventeen": 17, "eighteen": 18, "nineteen": 19, "twenty": 20, "thirty": 30, "forty": 40,
    "fifty": 50, "sixty": 60, "seventy": 70, "eighty": 80, "ninety": 90,
}  # fmt: skip
_WORDS_ES = {
    "cero": 0, "uno": 1, "una": 1, "un": 1, "dos": 2, "tres": 3, "cuatro": 4, "cinco": 5, "seis": 6,
    "siete": 7, "ocho": 8, "nueve": 9, "diez": 10, "once": 11, "doce": 12, "trece": 13, "catorce": 14,
    "quince": 15, "veinte": 20, "treinta": 30, "cuarenta": 40, "cincuenta": 50, "sesenta": 60,
    "setenta": 70, "ochenta": 80, "noventa": 90, "cien": 100, "ciento": 100, "doscientos": 200,
    "trescientos": 300, "cuatrocientos": 400, "quinientos": 500, "seiscientos": 600, "setecientos": 700,
    "ochocientos": 800, "novecientos": 900,
}  # fmt: skip
_UNITS = {"hundred": 100, "thousand": 1000, "million": 1_000_000, "mil": 1000, "millón": 1_000_000}
_JOINERS = {"and", "y", "-"}
_NUMBER_WORDS = set(_WORDS_EN) | set(_WORDS_ES) | set(_UNITS)
_WORD_RUN = re.compile(
    r"\b(?:(?:" + "|".join(sorted(_NUMBER_WORDS, key=len, reverse=True)) + r")(?:[\s-]+(?:and|y)?[\s-]*)?)+",
    re.IGNORECASE,
)

_CURRENCY_BEFORE = r"(?:[$€£]|usd|eur|gbp|us\$)"
_CURRENCY_AFTER = r"(?:[$€£]|usd|eur|gbp|dollars?|euros?|pounds?|bucks|dólares|dolares)"
_PER_PERIOD = r"(?:/\s?(?:mo|month|yr|year|week|mes|año)|(?:a|per|each|al|por)\s(?:month|year|week|mes|año))"
_NUM = r"\d{1,3}(?:[.,\s]\d{3})+(?:[.,]\d{1,2})?|\d+(?:[.,]\d{1,2})?"
_AMOUNT = re.compile(
    rf"(?P<pre>{_CURRENCY_BEFORE})\s?(?P<a>{_NUM})(?P<ak>\s?k\b)?"
    rf"|(?P<b>{_NUM})(?P<bk>\s?k\b)?\s?(?P<post>{_CURRENCY_AFTER}(?![a-z])|{_PER_PERIOD})"
    rf"|\b(?P<c>\d+(?:[.,]\d)?)k\b",
    re.IGNORECASE,
)
_PERCENT = re.compile(r"(?P<n>\d+(?:[.,]\d+)?)\s?(?:%|percent\b|per cent\b|por ciento\b)", re.IGNORECASE)
_URL = re.compile(r"\b(?:https?://|www\.)[^\s<>\"')\]]+", re.IGNORECASE)
_PHONE = re.compile(r"(?<![\w.])\+?\d[\d\s().-]{6,}\d(?![\w])")
_MONTHS = {
    "january": 1, "february": 2, "march": 3, "april": 4, "may": 5, "june": 6, "july": 7, "august": 8,
    "september": 9, "october": 10, "november": 11, "december": 12, "jan": 1, "feb": 2, "mar": 3, "apr": 4,
    "jun": 6, "jul": 7, "aug": 8, "sep": 9, "sept": 9, "oct": 10, "nov": 11, "dec": 12, "enero": 1,
    "febrero": 2, "marzo": 3, "abril": 4, "mayo": 5, "junio": 6, "julio": 7, "agosto": 8, "septiembre": 9,
    "setiembre": 9, "octubre": 10, "noviembre": 11, "diciembre": 12,
}  # fmt: skip
_MONTH_RE = "|".join(sorted(_MONTHS, key=len, reverse=True))
_DATE = re.compile(
    rf"\b(?P<iy>\d{{4}})-(?P<im>\d{{1,2}})-(?P<id>\d{{1,2}})\b"
    rf"|\b(?P<dd>\d{{1,2}})/(?P<dm>\d{{1,2}})/(?P<dy>\d{{2,4}})\b"
    rf"|\b(?P<md_m>{_MONTH_RE})\.?\s(?P<md_d>\d{{1,2}})(?:st|nd|rd|th)?\b"
    rf"|\b(?P<dm_d>\d{{1,2}})(?:st|nd|rd|th)?\s(?:of\s|de\s)?(?P<dm_m>{_MONTH_RE})\b",
    re.IGNORECASE,
)


def parse_number(text: str) -> Decimal | None:
    """ "2,000" "2.000" "2 000" "1.299,50" "129.99" "1,5" → Decimal; None if it is not a number."""
    raw = text.strip().replace("\u00a0", " ")
    if not raw:
        return None
    last_dot, last_comma = raw.rfind("."), raw.rfind(",")
    if last_dot >= 0 and last_comma >= 0:
        decimal_sep = "." if last_dot > last_comma else ","
        thousands = "," if decimal_sep == "." else "."
        raw = raw.replace(thousands, "").replace(" ", "").replace(decimal_sep, ".")
    else:
        sep = "." if last_dot >= 0 else ("," if last_comma >= 0 else "")
        raw = raw.replace(" ", "")
        if sep:
            groups = raw.split(sep)
            if len(groups) > 2 or all(len(g) == 3 for g in groups[1:]) and len(groups[0]) <= 3:
                raw = raw.replace(sep, "")  # thousands separators: "2.000", "12,500", "1.000.000"
            else:
                raw = raw.replace(sep, ".")
    try:
        return Decimal(raw)
    except InvalidOperation:
        return None


def parse_number_words(text: str) -> Decimal | None:
    """ "two thousand" → 2000, "one hundred and twenty-nine" → 129, "dos mil quinientos" → 2500."""
    total, current, seen = 0, 0, False
    for word in re.split(r"[\s-]+", text.lower().strip()):
        if not word or word in _JOINERS:
            continue
        if word in _WORDS_EN or word in _WORDS_ES:
            current += _WORDS_EN.get(word, _WORDS_ES.get(word, 0))
            seen = True
        elif word == "hundred":
            current = max(current, 1) * 100
            seen = True
        elif word in ("thousand", "mil", "million", "millón"):
            total += max(current, 1) * _UNITS[word]
            current = 0
            seen = True
        else:
            return None
    return Decimal(total + current) if seen else None


def _norm(value: Decimal) -> str:
    return format(value.normalize(), "f") if value == value.to_integral() else format(value, "f")


def _amounts(text: str) -> list[tuple[Decimal, str]]:
    found: list[tuple[Decimal, str]] = []
    for match in _AMOUNT.finditer(text):
        number = match.group("a") or match.group("b") or match.group("c")
        value = parse_number(number)
        if value is None:
            continue
        if match.group("ak") or match.group("bk") or match.group("c"):
            value *= 1000
        found.append((value, match.group(0).strip()))
    for match in _WORD_RUN.finditer(text):
        phrase = match.group(0).strip(" -")
        value = parse_number_words(phrase)
        if value is None:
            continue
        tail = text[match.end() : match.end() + 16].lower()
        money_word = re.match(rf"\s*{_CURRENCY_AFTER}", tail) is not None
        # A number written out is a fact when it is an amount of money, or large enough to be one.
        if value >= 100 or money_word:
            found.append((value, phrase))
    return found


def _dates(text: str) -> list[tuple[tuple[int, int], str]]:
    found = []
    for match in _DATE.finditer(text):
        groups = match.groupdict()
        try:
            if groups["iy"]:
                month, day = int(groups["im"]), int(groups["id"])
            elif groups["dd"]:
                day, month = int(groups["dd"]), int(groups["dm"])
            elif groups["md_m"]:
                month, day = _MONTHS[groups["md_m"].lower()], int(groups["md_d"])
            else:
                month, day = _MONTHS[groups["dm_m"].lower()], int(groups["dm_d"])
        except (KeyError, ValueError):
            continue
        if 1 <= month <= 12 and 1 <= day <= 31:
            found.append(((month, day), match.group(0)))
    return found


def normalise_url(url: str) -> str:
    url = url.strip().rstrip(".,;:!?)")
    url = re.sub(r"^https?://", "", url, flags=re.IGNORECASE)
    url = re.sub(r"^www\.", "", url, flags=re.IGNORECASE)
    host, slash, rest = url.partition("/")
    return (host.lower() + slash + rest).rstrip("/")


def _phones(text: str) -> list[tuple[str, str]]:
    found = []
    for match in _PHONE.finditer(text):
        digits = re.sub(r"\D", "", match.group(0))
        if len(digits) >= 8:
            found.append((digits, match.group(0)))
    return found


def extract_facts(text: str) -> list[Fact]:
    facts: list[Fact] = []
    url_spans = []
    for match in _URL.finditer(text):
        facts.append(Fact(FactKind.URL, normalise_url(match.group(0)), match.group(0)))
        url_spans.append(match.span())
    # Numbers inside a URL are part of the URL, not amounts or phones.
    plain = text
    for start, end in reversed(url_spans):
        plain = plain[:start] + " " * (end - start) + plain[end:]
    percent_spans = []
    for match in _PERCENT.finditer(plain):
        value = parse_number(match.group("n"))
        if value is not None:
            facts.append(Fact(FactKind.PERCENT, _norm(value), match.group(0)))
            percent_spans.append(match.span())
    for (month, day), written in _dates(plain):
        facts.append(Fact(FactKind.DATE, f"{month}-{day}", written))
    for value, written in _amounts(plain):
        facts.append(Fact(FactKind.AMOUNT, _norm(value), written))
    for digits, written in _phones(plain):
        facts.append(Fact(FactKind.PHONE, digits, written))
    return facts


def catalog_facts(
    *, texts: Iterable[str], prices: Iterable[Decimal] = (), dates: Iterable[object] = ()
) -> CatalogFacts:
    """The facts a catalog allows: its prices and dates, and every fact written in its texts and links."""
    amounts: set[Decimal] = {Decimal(p) for p in prices}
    percents: set[Decimal] = set()
    allowed_dates: set[tuple[int, int]] = set()
    urls: set[str] = set()
    phones: set[str] = set()
    for value in dates:
        month, day = getattr(value, "month", None), getattr(value, "day", None)
        if month and day:
            allowed_dates.add((int(month), int(day)))
    for text in texts:
        for fact in extract_facts(text or ""):
            if fact.kind is FactKind.AMOUNT:
                amounts.add(Decimal(fact.value))
            elif fact.kind is FactKind.PERCENT:
                percents.add(Decimal(fact.value))
            elif fact.kind is FactKind.DATE:
                month, day = fact.value.split("-")
                allowed_dates.add((int(month), int(day)))
            elif fact.kind is FactKind.URL:
                urls.add(fact.value)
            else:
                phones.add(fact.value)
        # A bare number in the catalog ("129 a month" already matched) may be quoted as an amount.
        for number in re.findall(_NUM, text or ""):
            value = parse_number(number)
            if value is not None:
                amounts.add(value)
    return CatalogFacts(
        amounts=frozenset(amounts),
        percents=frozenset(percents),
        dates=frozenset(allowed_dates),
        urls=frozenset(urls),
        phones=frozenset(phones),
    )


def ground_reply(*, reply: str, catalog: CatalogFacts, context_texts: Iterable[str] = ()) -> GroundingResult:
    """The facts of `reply` that neither the catalog nor the lead's own messages (`context_texts`) hold."""
    stated = extract_facts(reply)
    if not stated:
        return GroundingResult()
    echoed = catalog_facts(texts=context_texts)
    ungrounded = tuple(fact for fact in stated if not catalog.holds(fact) and not echoed.holds(fact))
    return GroundingResult(ungrounded=ungrounded)
