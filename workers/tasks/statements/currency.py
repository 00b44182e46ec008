"""A file's currency, from what it states (symbols, codes, headers, the account's IBAN) or its locale.

Amounts of different currencies are never added up anywhere: a file whose currency stays unknown
keeps its totals to itself (with a warning), so inference errs on the side of "unknown".
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass

SYMBOLS: dict[str, str] = {
    "€": "EUR", "$": "USD", "£": "GBP", "¥": "JPY", "₹": "INR", "CHF": "CHF", "kr": "SEK", "zł": "PLN",
}  # fmt: skip
KNOWN_CODES = frozenset({
    "EUR", "USD", "GBP", "CHF", "JPY", "CAD", "AUD", "NZD", "SEK", "NOK", "DKK", "PLN", "CZK", "HUF",
    "INR", "CNY", "HKD", "SGD", "ZAR", "BRL", "MXN", "TRY",
})  # fmt: skip
_CODE = re.compile(r"\b([A-Z]{3})\b")
# In free text (a preamble, a PDF page) only unmistakable marks count: codes as words, € £ and $.
_TEXT_MARK = re.compile(r"(?<![A-Za-z])(EUR|USD|GBP|CHF|CAD|AUD|NZD|SEK|NOK|DKK|PLN|CZK|HUF|JPY)(?![A-Za-z])|([€£$])")
_IBAN = re.compile(r"\b([A-Z]{2})(\d{2})((?:\s?[A-Z0-9]{4}){2,7}(?:\s?[A-Z0-9]{1,3})?)\b")
_EURO_COUNTRIES = frozenset(
    ["AT", "BE", "CY", "DE", "EE", "ES", "FI", "FR", "GR", "HR", "IE", "IT", "LT", "LU", "LV", "MT", "NL", "PT",
     "SI", "SK", "MC", "SM", "AD"]
)
_IBAN_CURRENCY = {"GB": "GBP", "CH": "CHF", "LI": "CHF", "SE": "SEK", "NO": "NOK", "DK": "DKK", "PL": "PLN",
                  "CZ": "CZK", "HU": "HUF"}
_SORT_CODE = re.compile(r"sort[\s-]?code\W{0,3}\d{2}[- ]\d{2}[- ]\d{2}", re.IGNORECASE)


def currency_of(text: str) -> str | None:
    """The currency a cell names by symbol or ISO code ('-$3.20' -> USD, 'EUR' -> EUR)."""
    for sym, code in SYMBOLS.items():
        if sym in text:
            return code
    for code in _CODE.findall(text.upper()):
        if code in KNOWN_CODES:
            return str(code)
    return None


def marks_in_text(text: str) -> Counter[str]:
    """Currency codes and € £ $ symbols in free text, counted."""
    found: Counter[str] = Counter()
    for code, symbol in _TEXT_MARK.findall(text):
        found[code or SYMBOLS[symbol]] += 1
    return found


def iban_currency(text: str) -> str | None:
    """The currency of the first valid IBAN in the text (DE.. -> EUR, GB.. -> GBP, CH.. -> CHF)."""
    for m in _IBAN.finditer(text):
        country, check, rest = m.group(1), m.group(2), m.group(3).replace(" ", "")
        if _iban_valid(country + check + rest):
            return "EUR" if country in _EURO_COUNTRIES else _IBAN_CURRENCY.get(country)
    if _SORT_CODE.search(text):
        return "GBP"
    return None


def _iban_valid(iban: str) -> bool:
    if not 15 <= len(iban) <= 34:
        return False
    moved = iban[4:] + iban[:4]
    digits = "".join(str(int(ch, 36)) for ch in moved)
    return int(digits) % 97 == 1


@dataclass(frozen=True)
class Evidence:
    """What a file says about its currency, strongest first; each field is a code or None."""

    header: str | None = None  # "Amount (EUR)", "Betrag (€)"
    amounts: str | None = None  # symbols or codes inside the amount cells
    text: str | None = None  # codes and symbols in the preamble / page text
    iban: str | None = None  # the account's IBAN country, or a UK sort code
    words: str | None = None  # header words only one country's banks use ("Check or Slip #", "Money out")
    option: str | None = None  # the task's currency option
    locale: str | None = None  # a guess from the number format, date order and header language


def decide(evidence: Evidence) -> tuple[str, str]:
    """(currency, source): the strongest evidence wins; ("", "unknown") when there is none."""
    for source in ("header", "amounts", "text", "iban", "words", "option", "locale"):
        code = getattr(evidence, source)
        if code:
            return code, source
    return "", "unknown"


def most_common(codes: Iterable[str | None]) -> str | None:
    counted = Counter(c for c in codes if c)
    return counted.most_common(1)[0][0] if counted else None


def locale_guess(decimal: str, date_order: str, header_words: str) -> str | None:
    """Euro for a decimal comma with continental header words or day.month dates; dollars for
    month-first dates with a decimal point. Anything else stays unknown."""
    continental = header_words in ("de", "fr", "es", "nl", "it")
    if decimal == "," and (continental or date_order == "dmy"):
        return "EUR"
    if decimal == "." and date_order == "mdy" and header_words == "en":
        return "USD"
    return None
