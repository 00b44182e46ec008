"""Which column is which: header words in six languages, shared by the CSV and the PDF readers.

Headers are matched after lower-casing, dropping a "(EUR)"-style part and punctuation, so
``Auftraggeber / Begünstigter`` is ``auftraggeber begünstigter`` and ``Zahlungsempfänger*in`` is
``zahlungsempfänger in``. Payee and purpose columns both go into the description.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from workers.tasks.statements.currency import KNOWN_CODES, SYMBOLS, currency_of

# Role -> language -> header names, best first within a role (the rank counts across languages in
# this order). A file's header language is a hint for its currency and date order.
ROLE_NAMES: dict[str, dict[str, list[str]]] = {
    "date": {
        "en": ["transaction date", "trans date", "booking date", "posting date", "posted date", "date", "post date"],
        "de": ["buchungstag", "buchungsdatum", "datum", "buchung", "belegdatum"],
        "fr": ["date operation", "date de l operation", "date opération"],
        "es": ["fecha operacion", "fecha"],
        "nl": ["boekdatum", "datum transactie"],
        "it": ["data operazione", "data"],
        "any": ["value date", "valuta", "valutadatum", "wertstellung", "wert", "date valeur", "fecha valor"],
    },
    "description": {
        "en": ["description", "transaction description", "details", "transaction details", "narrative",
               "payee", "payee name", "name", "merchant", "merchant name", "counterparty", "counterparty name",
               "memo", "reference", "particulars", "text"],
        "de": ["beguenstigter zahlungspflichtiger", "begünstigter zahlungspflichtiger",
               "auftraggeber begünstigter", "auftraggeber beguenstigter", "begünstigter auftraggeber",
               "beguenstigter auftraggeber", "auftraggeber empfänger", "auftraggeber empfaenger",
               "zahlungsempfänger in", "zahlungsempfaenger in", "zahlungsempfänger", "empfänger",
               "name zahlungsbeteiligter", "zahlungspflichtige r", "auftraggeber", "beschreibung", "verwendungszweck",
               "umsatztext", "vorgang", "buchungstext"],
        "fr": ["libelle", "libellé"],
        "es": ["concepto", "descripcion", "descripción"],
        "nl": ["omschrijving", "naam omschrijving", "mededelingen"],
        "it": ["descrizione", "causale"],
    },
    "amount": {
        "en": ["amount", "transaction amount", "value", "sum"],
        "de": ["betrag", "umsatz"],
        "fr": ["montant"],
        "es": ["importe"],
        "nl": ["bedrag"],
        "it": ["importo"],
    },
    "debit": {
        "en": ["debit", "debits", "debit amount", "withdrawal", "withdrawals", "paid out", "money out", "out",
               "payments", "debit eur"],
        "de": ["soll", "ausgang", "belastung", "lastschrift"],
        "fr": ["débit"],
        "es": ["cargo", "cargos"],
        "nl": ["af"],
        "it": ["uscite", "addebiti"],
    },
    "credit": {
        "en": ["credit", "credits", "credit amount", "deposit", "deposits", "paid in", "money in", "in",
               "receipts"],
        "de": ["haben", "eingang", "gutschrift"],
        "fr": ["crédit"],
        "es": ["abono", "abonos"],
        "nl": ["bij"],
        "it": ["entrate", "accrediti"],
    },
    "balance": {
        "en": ["balance", "running balance", "available balance", "ledger balance"],
        "de": ["saldo", "kontostand"],
        "fr": ["solde"],
    },
    "currency": {
        "en": ["currency", "ccy", "currency code"],
        "de": ["währung", "waehrung"],
        "fr": ["devise"],
        "es": ["moneda"],
        "any": ["valuta code"],
    },
    "indicator": {
        "en": ["credit debit indicator", "debit credit", "credit debit", "dr cr", "cr dr", "type",
               "transaction type"],
        "de": ["s h", "soll haben"],
        "nl": ["af bij"],
    },
}  # fmt: skip

_ROLE_LOOKUP: dict[str, tuple[str, int, str]] = {}
for _role, _by_language in ROLE_NAMES.items():
    _rank = 0
    for _lang, _names in _by_language.items():
        for _name in _names:
            _ROLE_LOOKUP.setdefault(_name, (_role, _rank, _lang))
            _rank += 1

MAX_DESCRIPTION_COLUMNS = 4
# Header words only one country's banks use: a hint for the file's currency.
CURRENCY_WORDS = {"check or slip": "USD", "check number": "USD", "check": "USD", "paid out": "GBP",
                  "paid in": "GBP", "money out": "GBP", "money in": "GBP"}


def norm_header(cell: str) -> tuple[str, str | None]:
    """'Amount (EUR)' -> ('amount', 'EUR'); 'Betrag in €' -> ('betrag', 'EUR')."""
    text = cell.strip().strip("\ufeff").strip().strip('"').lower()
    hint = None
    m = re.search(r"[(\[]\s*([^)\]]*)\s*[)\]]", text)
    if m:
        hint = currency_of(m.group(1).upper()) or currency_of(m.group(1))
        text = (text[: m.start()] + text[m.end() :]).strip()
    m = re.search(r"\s+(?:in\s+)?(\S+)$", text)  # "betrag in €", "betrag chf"
    if m and (m.group(1).upper() in KNOWN_CODES or m.group(1) in SYMBOLS):
        hint = currency_of(m.group(1).upper()) or SYMBOLS.get(m.group(1))
        text = text[: m.start()]
    text = re.sub(r"[^\w]+", " ", text).replace("_", " ").strip()
    return text, hint


def role_of(name: str, exact: bool = False) -> tuple[str, int, str] | None:
    """(role, rank, language) of a normalised header name; None for columns we do not read.
    ``exact``: only names in ROLE_NAMES, not the words-inside fallbacks."""
    if name in _ROLE_LOOKUP or exact:
        return _ROLE_LOOKUP.get(name)
    words = set(name.split())
    if words & {"balance", "saldo", "kontostand", "solde"}:
        return "balance", 50, "any"
    english = (("debit", ("debit", "withdrawal", "withdrawals")), ("credit", ("credit", "deposit", "deposits")))
    for role, keys in english:
        if words & set(keys):
            return role, 50, "en"
    if "date" in words or "datum" in words:
        return "date", 60, "any"
    if "amount" in words or "betrag" in words:
        return "amount", 60, "any"
    if words & {"description", "details", "memo", "payee", "verwendungszweck", "beschreibung"}:
        return "description", 60, "any"
    return None


@dataclass
class Columns:
    date: int
    description: list[int]
    amount: int | None = None
    debit: int | None = None
    credit: int | None = None
    currency: int | None = None
    indicator: int | None = None
    balance: int | None = None
    currency_hint: str | None = None
    words_currency: str | None = None  # from header words one country's banks use
    language: str = ""  # the header's language (en, de, fr, es, nl, it), "" when unknown
    header: list[str] = field(default_factory=list)
    width: int = 0  # fields in a well-formed row (the header's, or the usual one without a header)

    @property
    def money(self) -> list[int]:
        """Every column holding an amount (not the balance)."""
        return [c for c in (self.amount, self.debit, self.credit) if c is not None]


def columns_from_header(row: list[str]) -> Columns | None:
    """The columns a header row names, or None when it names no date and no amount column."""
    best: dict[str, tuple[int, int]] = {}  # role -> (rank, index)
    descriptions: list[tuple[int, int]] = []
    languages: list[str] = []
    hint = None
    words_currency = None
    for index, cell in enumerate(row):
        name, cell_hint = norm_header(cell)
        words_currency = words_currency or CURRENCY_WORDS.get(name)
        found = role_of(name) if name else None
        if not found:
            continue
        role, rank, language = found
        languages.append(language)
        if role in ("amount", "debit", "credit", "balance") and cell_hint:
            hint = hint or cell_hint
        if role == "description":
            descriptions.append((rank, index))
        elif role not in best or rank < best[role][0]:
            best[role] = (rank, index)
    if "date" not in best or not ({"amount", "debit", "credit"} & best.keys()):
        return None
    cols = Columns(
        date=best["date"][1],
        description=[i for _, i in sorted(descriptions)[:MAX_DESCRIPTION_COLUMNS]],
        currency_hint=hint,
        words_currency=words_currency,
        language=_language(languages),
        header=[c.strip().strip("\ufeff") for c in row],
        width=len(row),
    )
    for role in ("amount", "debit", "credit", "currency", "indicator", "balance"):
        if role in best:
            setattr(cols, role, best[role][1])
    _settle_amount_columns(cols)
    return cols


def _settle_amount_columns(cols: Columns) -> None:
    """One of debit/credit alone is really a signed amount column; an amount column beside both
    debit and credit (some German exports) is the one read."""
    if cols.amount is None and (cols.debit is None or cols.credit is None):
        cols.amount = cols.debit if cols.debit is not None else cols.credit
        cols.debit = cols.credit = None
    elif cols.amount is not None and cols.debit is not None and cols.credit is not None:
        cols.debit = cols.credit = None


def _language(languages: list[str]) -> str:
    specific = [lang for lang in languages if lang != "any"]
    if not specific:
        return ""
    top = max(set(specific), key=specific.count)
    return top
