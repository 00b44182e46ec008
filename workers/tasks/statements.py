"""statements: bank-statement CSV exports -> normalised, categorised transactions and a job report.

Per file, decided from the whole file rather than row by row:

* encoding (BOM, utf-8, cp1252, latin-1) and delimiter (``csv.Sniffer``, then scoring , ; TAB |);
* the header row (preamble lines such as account details are skipped): the first row in the first
  50 lines naming a date column and an amount (or debit/credit) column, in English, German, French,
  Spanish, Dutch or Italian; files without a header are recognised from their contents;
* the date format: ISO (Y-m-d, Y/m/d, Ymd), d/m/Y, m/d/Y, d.m.Y, d-m-Y and two-digit-year and
  month-name forms; the format that parses the most rows wins, and a tie (all days <= 12) goes to the
  ``date_order`` option, then to the order that keeps the statement sorted, then to d/m/Y unless the
  file looks American (m/d/Y for dollars);
* the decimal mark (``.`` or ``,``) from every amount in the file, thousands separators (, . space
  ' and narrow spaces) dropped; signs as -12.50, 12.50-, (12.50), 12.50 DR / CR; currency symbols
  and codes recognised;
* a single signed amount column, an amount plus a debit/credit indicator column, or separate debit
  and credit columns (money out is negative).

Every transaction is categorised by a rules file (TOML)::

    default = "Uncategorised"        # category when no pattern matches
    default_income = "Other income"  # optional: category for unmatched money coming in
    [categories]                     # first matching category wins, top to bottom
    Groceries = ["tesco", "aldi", "re:\\bwhole ?foods\\b"]

A pattern is a case-insensitive substring of the description, or with ``re:`` (or wrapped in
``/.../``) a case-insensitive regular expression. The bundled rules are
``data/rules/default_rules.toml``.

Each item writes ``<name>.transactions.csv`` (date, description, amount, currency, category, source,
line) and returns counts, date range, per-currency totals, per-category totals and the dialect found.
The job report (finalize) is ``statements_report.csv`` (long format: ``kind`` = total rows per
month/category/currency, then every transaction) and ``statements_report.xlsx`` (sheets "Summary":
category x month pivot per currency, and "Transactions").
"""

from __future__ import annotations

import csv
import io
import logging
import os
import re
import tomllib
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from importlib import resources
from pathlib import Path
from typing import Any, Iterable, Iterator

from workers.registry import CheckContext, ItemError, JobContext, Option, TaskContext, task
from workers.tasks._common import (
    ENCODING_ALLOWED,
    check_encoding,
    check_is_text,
    decode_text,
    output_file,
    read_limited,
    relative_to_output,
    sniff_type,
    write_atomic,
)

log = logging.getLogger("batchdesk.task.statements")

REPORT_CSV = "statements_report.csv"
REPORT_XLSX = "statements_report.xlsx"
TRANSACTION_COLUMNS = ["date", "description", "amount", "currency", "category", "source", "line"]


def _check_rules(option: str, ctx: CheckContext) -> None:
    """The rules file must exist (current folder, then the job's folder) and parse, as the task reads
    it; a StatementError is a ValueError, so its message is the reason shown."""
    load_rules(resolve_rules_path(option, ctx.source_root))


def _check_currency(code: str, ctx: CheckContext) -> None:
    if code and not re.fullmatch(r"[A-Za-z]{3}", code):
        raise ValueError("use a 3-letter currency code such as EUR, or leave it empty")


OPTIONS = (
    Option("rules", str, "", "categorisation rules (TOML); empty = bundled data/rules/default_rules.toml",
           check=_check_rules, allowed="empty (bundled rules) or a TOML rules file"),
    Option("currency", str, "", "currency code for files that name none (e.g. EUR)",
           check=_check_currency, allowed="empty or a 3-letter code such as EUR"),
    Option("date_order", str, "auto", "how to read ambiguous dates", choices=("auto", "ymd", "dmy", "mdy")),
    Option("decimal", str, "auto", "decimal mark of amounts", choices=("auto", ".", ",")),
    Option("delimiter", str, "auto", "field delimiter", choices=("auto", ",", ";", "tab", "|")),
    Option("encoding", str, "auto", "file encoding; auto = BOM, then utf-8, cp1252, latin-1",
           check=check_encoding, allowed=ENCODING_ALLOWED),
)


class StatementError(ValueError):
    """A statement file cannot be read; the message says why."""


# --------------------------------------------------------------------------------------------
# Rules
# --------------------------------------------------------------------------------------------


@dataclass
class Rules:
    path: str
    default: str
    default_income: str | None
    categories: list[tuple[str, list[Any]]]  # (category, [str (lower-cased substring) | re.Pattern])

    def categorise(self, description: str, amount: Decimal) -> str:
        low = description.lower()
        for category, patterns in self.categories:
            for pattern in patterns:
                if (pattern in low) if isinstance(pattern, str) else pattern.search(description):
                    return category
        if amount > 0 and self.default_income:
            return self.default_income
        return self.default


def default_rules_path() -> Path:
    """The bundled rules file, found through the ``data`` package (works installed and frozen)."""
    return Path(str(resources.files("data").joinpath("rules", "default_rules.toml")))


def resolve_rules_path(option: str | None, source_root: Path | None = None) -> Path:
    """``rules`` option -> file: empty means bundled; a relative path is tried against the current
    folder, then the job's source folder."""
    if not option:
        return default_rules_path()
    candidate = Path(option).expanduser()
    if candidate.is_absolute():
        tried = [candidate]
    else:
        tried = [Path.cwd() / candidate] + ([Path(source_root) / candidate] if source_root else [])
    for path in tried:
        if path.is_file():
            return path
    raise StatementError(f"rules file not found: {option}")


_RULES_CACHE: dict[tuple[str, int, int], Rules] = {}


def load_rules(path: Path) -> Rules:
    """Parse and validate a rules file (cached by path, size and mtime)."""
    try:
        st = path.stat()
    except OSError as exc:
        raise StatementError(f"cannot read rules file {path}: {exc.strerror}") from None
    key = (str(path), st.st_size, st.st_mtime_ns)
    if key in _RULES_CACHE:
        return _RULES_CACHE[key]
    try:
        doc = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        raise StatementError(f"cannot read rules file {path}: {exc}") from None
    except tomllib.TOMLDecodeError as exc:
        raise StatementError(f"rules file {path} is not valid TOML: {exc}") from None
    default = doc.get("default", "Uncategorised")
    income = doc.get("default_income")
    cats = doc.get("categories", {})
    if not isinstance(default, str) or (income is not None and not isinstance(income, str)):
        raise StatementError(f"rules file {path}: 'default' and 'default_income' must be strings")
    if not isinstance(cats, dict):
        raise StatementError(f"rules file {path}: [categories] must be a table of category = [patterns]")
    categories = []
    for name, patterns in cats.items():
        if isinstance(patterns, str):
            patterns = [patterns]
        if not isinstance(patterns, list) or not all(isinstance(p, str) for p in patterns):
            raise StatementError(f"rules file {path}: category {name!r} must be a list of strings")
        compiled: list[Any] = []
        for pattern in patterns:
            regex = None
            if pattern.startswith("re:"):
                regex = pattern[3:]
            elif len(pattern) > 2 and pattern.startswith("/") and pattern.endswith("/"):
                regex = pattern[1:-1]
            if regex is None:
                if pattern.strip():
                    compiled.append(pattern.lower())
                continue
            try:
                compiled.append(re.compile(regex, re.I))
            except re.error as exc:
                raise StatementError(f"rules file {path}: category {name!r}: bad regex {regex!r}: {exc}") from None
        categories.append((str(name), compiled))
    rules = Rules(str(path), default, income, categories)
    _RULES_CACHE[key] = rules
    return rules


# --------------------------------------------------------------------------------------------
# Header recognition
# --------------------------------------------------------------------------------------------

# Role -> header names, best first. Headers are matched after lower-casing, dropping a trailing
# "(EUR)"-style part and punctuation.
ROLE_NAMES: dict[str, list[str]] = {
    "date": [
        "transaction date", "trans date", "booking date", "posting date", "posted date", "date",
        "buchungstag", "buchungsdatum", "datum", "date operation", "date de l operation",
        "fecha operacion", "fecha", "boekdatum", "datum transactie", "data operazione", "data",
        "value date", "valuta", "valutadatum", "wertstellung", "date valeur", "fecha valor",
    ],
    "description": [
        "description", "transaction description", "details", "transaction details", "narrative",
        "payee", "name", "merchant", "counterparty", "memo", "reference", "particulars", "text",
        "beguenstigter zahlungspflichtiger", "begünstigter zahlungspflichtiger",
        "auftraggeber empfänger", "empfänger", "verwendungszweck", "umsatztext",
        "libelle", "libellé", "concepto", "descripcion", "descripción", "omschrijving",
        "naam omschrijving", "mededelingen", "descrizione", "causale", "buchungstext",
    ],
    "amount": [
        "amount", "transaction amount", "betrag", "umsatz", "montant", "importe", "bedrag",
        "importo", "value", "sum",
    ],
    "debit": [
        "debit", "debits", "debit amount", "withdrawal", "withdrawals", "paid out", "money out",
        "out", "soll", "ausgang", "débit", "debit eur", "cargo", "cargos", "af", "uscite", "addebiti",
    ],
    "credit": [
        "credit", "credits", "credit amount", "deposit", "deposits", "paid in", "money in", "in",
        "haben", "eingang", "crédit", "abono", "abonos", "bij", "entrate", "accrediti",
    ],
    "currency": ["currency", "ccy", "currency code", "währung", "waehrung", "devise", "moneda", "valuta code"],
    "indicator": [
        "credit debit indicator", "debit credit", "credit debit", "dr cr", "cr dr", "s h",
        "soll haben", "af bij", "type", "transaction type",
    ],
}  # fmt: skip
_ROLE_LOOKUP: dict[str, tuple[str, int]] = {}
for _role, _names in ROLE_NAMES.items():
    for _rank, _name in enumerate(_names):
        _ROLE_LOOKUP.setdefault(_name, (_role, _rank))

_SYMBOLS = {"€": "EUR", "$": "USD", "£": "GBP", "¥": "JPY", "₹": "INR", "CHF": "CHF", "kr": "SEK", "zł": "PLN"}
_CODE = re.compile(r"\b([A-Z]{3})\b")
_KNOWN_CODES = {
    "EUR", "USD", "GBP", "CHF", "JPY", "CAD", "AUD", "NZD", "SEK", "NOK", "DKK", "PLN", "CZK", "HUF",
    "INR", "CNY", "HKD", "SGD", "ZAR", "BRL", "MXN", "TRY",
}  # fmt: skip


def _norm_header(cell: str) -> tuple[str, str | None]:
    """'Amount (EUR)' -> ('amount', 'EUR'); 'Betrag in €' -> ('betrag', 'EUR')."""
    text = cell.strip().strip("\ufeff").strip().strip('"').lower()
    hint = None
    m = re.search(r"[(\[]\s*([^)\]]*)\s*[)\]]", text)
    if m:
        hint = _currency_of(m.group(1).upper()) or _currency_of(m.group(1))
        text = (text[: m.start()] + text[m.end():]).strip()
    m = re.search(r"\s+(?:in\s+)?(\S+)$", text)  # "betrag in €", "betrag chf"
    if m and (m.group(1).upper() in _KNOWN_CODES or m.group(1) in _SYMBOLS):
        hint = _currency_of(m.group(1).upper()) or _SYMBOLS.get(m.group(1))
        text = text[: m.start()]
    text = re.sub(r"[^\w]+", " ", text).strip()
    return text, hint


def _currency_of(text: str) -> str | None:
    for sym, code in _SYMBOLS.items():
        if sym in text:
            return code
    for code in _CODE.findall(text.upper()):
        if code in _KNOWN_CODES:
            return code
    return None


def _role_of(name: str) -> tuple[str, int] | None:
    if name in _ROLE_LOOKUP:
        return _ROLE_LOOKUP[name]
    words = set(name.split())
    if "balance" in words or "saldo" in words or "kontostand" in words:
        return None
    for role, keys in (("debit", ("debit", "withdrawal", "withdrawals")), ("credit", ("credit", "deposit", "deposits"))):
        if words & set(keys):
            return role, 50
    if "date" in words or "datum" in words:
        return "date", 60
    if "amount" in words or "betrag" in words:
        return "amount", 60
    if words & {"description", "details", "memo", "payee", "verwendungszweck"}:
        return "description", 60
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
    currency_hint: str | None = None
    header: list[str] = field(default_factory=list)
    width: int = 0  # fields in a well-formed row (the header's, or the usual one without a header)


def columns_from_header(row: list[str]) -> Columns | None:
    best: dict[str, tuple[int, int]] = {}  # role -> (rank, index)
    descriptions: list[tuple[int, int]] = []
    hint = None
    for index, cell in enumerate(row):
        name, cell_hint = _norm_header(cell)
        if not name:
            continue
        found = _role_of(name)
        if not found:
            continue
        role, rank = found
        if role in ("amount", "debit", "credit") and cell_hint:
            hint = hint or cell_hint
        if role == "description":
            descriptions.append((rank, index))
        elif role not in best or rank < best[role][0]:
            best[role] = (rank, index)
    if "date" not in best or not ({"amount", "debit", "credit"} & best.keys()):
        return None
    cols = Columns(
        date=best["date"][1],
        description=[i for _, i in sorted(descriptions)[:3]],
        currency_hint=hint,
        header=[c.strip().strip("\ufeff") for c in row],
        width=len(row),
    )
    for role in ("amount", "debit", "credit", "currency", "indicator"):
        if role in best:
            setattr(cols, role, best[role][1])
    if cols.amount is None and (cols.debit is None or cols.credit is None):
        # one of debit/credit alone is really a signed amount column
        cols.amount = cols.debit if cols.debit is not None else cols.credit
        cols.debit = cols.credit = None
    return cols


# --------------------------------------------------------------------------------------------
# Dates
# --------------------------------------------------------------------------------------------

# (strptime format, shown as, order)
DATE_FORMATS = [
    ("%Y-%m-%d", "Y-m-d", "ymd"),
    ("%Y/%m/%d", "Y/m/d", "ymd"),
    ("%Y.%m.%d", "Y.m.d", "ymd"),
    ("%d/%m/%Y", "d/m/Y", "dmy"),
    ("%m/%d/%Y", "m/d/Y", "mdy"),
    ("%d.%m.%Y", "d.m.Y", "dmy"),
    ("%d-%m-%Y", "d-m-Y", "dmy"),
    ("%m-%d-%Y", "m-d-Y", "mdy"),
    ("%d/%m/%y", "d/m/y", "dmy"),
    ("%m/%d/%y", "m/d/y", "mdy"),
    ("%d.%m.%y", "d.m.y", "dmy"),
    ("%d-%m-%y", "d-m-y", "dmy"),
    ("%d %b %Y", "d Mon Y", "dmy"),
    ("%d-%b-%Y", "d-Mon-Y", "dmy"),
    ("%d %B %Y", "d Month Y", "dmy"),
    ("%d-%b-%y", "d-Mon-y", "dmy"),
    ("%d %b %y", "d Mon y", "dmy"),
    ("%b %d, %Y", "Mon d, Y", "mdy"),
    ("%B %d, %Y", "Month d, Y", "mdy"),
    ("%b %d %Y", "Mon d Y", "mdy"),
    ("%Y%m%d", "Ymd", "ymd"),
]
_TIME_TAIL = re.compile(r"^(.*?\d)(?:[ T]+\d{1,2}:\d{2}(?::\d{2}(?:\.\d+)?)?\s*(?:[APap][Mm])?(?:Z|[+-]\d{2}:?\d{2})?)$")


def _clean_date(raw: str) -> str:
    text = raw.strip().strip("'\"")
    m = _TIME_TAIL.match(text)
    return m.group(1) if m else text


def _parse_date(text: str, fmt: str) -> date | None:
    try:
        value = datetime.strptime(text, fmt).date()
    except ValueError:
        return None
    return value if 1900 <= value.year <= 2200 else None


def choose_date_format(values: list[str], order: str = "auto", hints: dict[str, Any] | None = None) -> tuple[str, str, bool]:
    """Pick the format that parses the most of ``values``; returns (strptime format, label, ambiguous)."""
    sample = [v for v in (_clean_date(v) for v in values) if v]
    if not sample:
        raise StatementError("the date column is empty")
    scored = []
    for fmt, label, fmt_order in DATE_FORMATS:
        if order != "auto" and fmt_order != order:
            continue
        parsed = [_parse_date(v, fmt) for v in sample]
        ok = sum(p is not None for p in parsed)
        if ok:
            scored.append((ok, fmt, label, fmt_order, parsed))
    if not scored:
        raise StatementError(f"no recognisable dates (e.g. {sample[0]!r})")
    best = max(s[0] for s in scored)
    if best * 2 < len(sample):
        raise StatementError(f"no consistent date format (e.g. {sample[0]!r})")
    tied = [s for s in scored if s[0] == best]
    ambiguous = len({s[3] for s in tied}) > 1
    if len(tied) > 1:
        hints = hints or {}
        american = hints.get("currency") == "USD" and hints.get("decimal") != ","
        preferred = "mdy" if american else "dmy"

        def disorder(entry: Any) -> int:
            dates = [d for d in entry[4] if d is not None]
            up = sum(a > b for a, b in zip(dates, dates[1:]))
            down = sum(a < b for a, b in zip(dates, dates[1:]))
            return min(up, down)

        tied.sort(key=lambda s: (disorder(s), 0 if s[3] == preferred else 1, DATE_FORMATS.index((s[1], s[2], s[3]))))
    return tied[0][1], tied[0][2], ambiguous


# --------------------------------------------------------------------------------------------
# Amounts
# --------------------------------------------------------------------------------------------

_NUMBER_CHARS = re.compile(r"[^\d.,]")
_DIGITS = re.compile(r"\d")


def decide_decimal(values: Iterable[str], fallback: str = ".") -> str:
    """Which of '.' and ',' is the decimal mark, judged from every amount in the file."""
    votes: Counter[str] = Counter()
    for raw in values:
        digits = _NUMBER_CHARS.sub("", raw)
        if not digits:
            continue
        has_dot, has_comma = "." in digits, "," in digits
        if has_dot and has_comma:
            votes["." if digits.rfind(".") > digits.rfind(",") else ","] += 1
        elif has_dot or has_comma:
            sep = "." if has_dot else ","
            other = "," if has_dot else "."
            tail = len(digits) - digits.rfind(sep) - 1
            if digits.count(sep) > 1:
                votes[other] += 1  # 1.234.567 / 1,234,567: a thousands separator
            elif tail != 3:
                votes[sep] += 1
    if not votes:
        return fallback
    return max(votes.items(), key=lambda kv: (kv[1], kv[0] == fallback))[0]


def parse_amount(raw: str, decimal: str) -> Decimal | None:
    """'1.234,56' / '(12.50)' / '12.50-' / '€ -3,00' / '45.00 DR' -> Decimal; '' -> None."""
    text = raw.strip().replace("\u2212", "-")
    if not text or not _DIGITS.search(text):
        return None
    negative = False
    upper = text.upper()
    if upper.endswith(("DR", " D")) or upper.endswith("DEBIT"):
        negative = True
    if text.startswith("(") and text.endswith(")"):
        negative = True
    stripped = re.sub(r"[^\d.,+\-]", "", text)
    if stripped.startswith("-") or stripped.endswith("-"):
        negative = True
    digits = _NUMBER_CHARS.sub("", stripped)
    thousands = "," if decimal == "." else "."
    digits = digits.replace(thousands, "").replace(decimal, ".")
    if digits.count(".") > 1 or not re.fullmatch(r"\d*\.?\d*", digits) or digits in ("", "."):
        raise StatementError(f"cannot read amount {raw.strip()!r}")
    try:
        value = Decimal(digits)
    except InvalidOperation:
        raise StatementError(f"cannot read amount {raw.strip()!r}") from None
    if value.as_tuple().exponent > -2:  # type: ignore[operator]
        value = value.quantize(Decimal("0.01"))
    return -value if negative else value


def _fmt(amount: Decimal) -> str:
    return format(amount, "f")


_NEGATIVE_INDICATORS = {"dr", "debit", "d", "s", "soll", "-", "out", "af", "debit card", "withdrawal", "lastschrift"}
_POSITIVE_INDICATORS = {"cr", "credit", "c", "h", "haben", "+", "in", "bij", "deposit", "gutschrift"}


# --------------------------------------------------------------------------------------------
# Parsing a whole statement
# --------------------------------------------------------------------------------------------


@dataclass
class Transaction:
    date: date
    description: str
    amount: Decimal
    currency: str
    line: int
    category: str = ""


@dataclass
class Statement:
    transactions: list[Transaction]
    skipped: list[str]  # "line N: reason"
    dialect: dict[str, Any]


_DELIMS = {"auto": None, ",": ",", ";": ";", "tab": "\t", "|": "|"}


def _rows(text: str, delimiter: str) -> list[tuple[int, list[str]]]:
    reader = csv.reader(io.StringIO(text), delimiter=delimiter, skipinitialspace=True, strict=False)
    out = []
    try:
        for row in reader:
            out.append((reader.line_num, row))
    except csv.Error as exc:
        raise StatementError(f"not valid CSV: {exc}") from None
    return out


def _find_header(rows: list[tuple[int, list[str]]]) -> tuple[int, Columns] | None:
    for index, (_line, row) in enumerate(rows[:50]):
        if len(row) < 2:
            continue
        cols = columns_from_header(row)
        if cols:
            return index, cols
    return None


def _choose_delimiter(text: str, wanted: str | None) -> tuple[str, list[tuple[int, list[str]]], tuple[int, Columns] | None]:
    if wanted:
        rows = _rows(text, wanted)
        return wanted, rows, _find_header(rows)
    candidates: list[str] = []
    try:
        candidates.append(csv.Sniffer().sniff(text[:20000], delimiters=",;\t|").delimiter)
    except csv.Error:
        pass
    candidates += [d for d in (",", ";", "\t", "|") if d not in candidates]
    best: tuple[tuple[int, int, int], str, Any, Any] | None = None
    for rank, delim in enumerate(candidates):
        if delim not in text:
            continue
        try:
            rows = _rows(text, delim)
        except StatementError:
            continue
        header = _find_header(rows)
        start = header[0] if header else 0
        body = [r for _, r in rows[start:] if any(c.strip() for c in r)]
        width = len(rows[start][1]) if header else Counter(len(r) for r in body).most_common(1)[0][0] if body else 0
        consistent = sum(len(r) == width for r in body) if width > 1 else 0
        score = (1 if header else 0, consistent, -rank)
        if best is None or score > best[0]:
            best = (score, delim, rows, header)
    if best is None:
        raise StatementError("no delimited columns found (not a CSV export?)")
    return best[1], best[2], best[3]


def _infer_columns(rows: list[tuple[int, list[str]]], decimal: str) -> Columns | None:
    """Headerless file: the column that is all dates, the first all-amount column, the widest text."""
    body = [r for _, r in rows if any(c.strip() for c in r)]
    if len(body) < 2:
        return None
    width = Counter(len(r) for r in body).most_common(1)[0][0]
    body = [r for r in body if len(r) == width]
    date_col = amount_col = None
    for col in range(width):
        values = [r[col] for r in body]
        try:
            choose_date_format(values)
            if date_col is None:
                date_col = col
                continue
        except StatementError:
            pass
        if amount_col is None and all(_looks_numeric(v) for v in values if v.strip()) and any(v.strip() for v in values):
            amount_col = col
    if date_col is None or amount_col is None:
        return None
    text_cols = [c for c in range(width) if c not in (date_col, amount_col)]
    if not text_cols:
        return None
    desc = max(text_cols, key=lambda c: sum(len(r[c]) for r in body))
    return Columns(date=date_col, description=[desc], amount=amount_col, width=width)


_NUMERIC = re.compile(r"^[\s(+\-\u2212]*[^\d\s]{0,3}\s*[\d.,' \u00a0\u202f]*\d[\d.,' \u00a0\u202f]*\s*[^\d\s]{0,3}[\s)\-]*(?:CR|DR)?$", re.I)


def _looks_numeric(value: str) -> bool:
    return bool(_NUMERIC.match(value.strip()))


def parse_statement(text: str, options: dict[str, Any] | None = None) -> Statement:
    """Parse a whole statement export into transactions (not yet categorised)."""
    options = options or {}
    check_is_text(text)
    if not text.strip():
        raise StatementError("empty file")
    delimiter, rows, header = _choose_delimiter(text, _DELIMS.get(str(options.get("delimiter", "auto"))))
    want_decimal = str(options.get("decimal") or "auto")
    fallback_decimal = "," if delimiter == ";" else "."
    if header:
        header_index, cols = header
        data_rows = rows[header_index + 1:]
        header_line = rows[header_index][0]
    else:
        cols = _infer_columns(rows, fallback_decimal)
        if cols is None:
            raise StatementError(
                "no header row with a date and an amount (or debit/credit) column in the first 50 lines"
            )
        data_rows, header_line = rows, None
    width = max(cols.date, *(c for c in (cols.amount, cols.debit, cols.credit) if c is not None))

    def cell(row: list[str], index: int | None) -> str:
        return row[index].strip() if index is not None and index < len(row) else ""

    amount_values = [cell(r, c) for _, r in data_rows for c in (cols.amount, cols.debit, cols.credit) if c is not None]
    decimal = want_decimal if want_decimal != "auto" else decide_decimal(amount_values, fallback_decimal)

    file_currency = cols.currency_hint or None
    if not file_currency and cols.currency is None:
        symbols = Counter(c for c in (_currency_of(v) for v in amount_values[:500] if v) if c)
        file_currency = symbols.most_common(1)[0][0] if symbols else None
    default_currency = (str(options.get("currency") or "").upper() or None)

    candidates = [(line, r) for line, r in data_rows if len(r) > width and cell(r, cols.date)]
    date_fmt, date_label, ambiguous = choose_date_format(
        [cell(r, cols.date) for _, r in candidates],
        str(options.get("date_order") or "auto"),
        {"currency": file_currency or default_currency, "decimal": decimal},
    )

    transactions: list[Transaction] = []
    skipped: list[str] = []
    flags: list[str] = []
    for line, row in data_rows:
        if not any(c.strip() for c in row):
            continue
        if len(row) <= width or (len(row) > cols.width and any(c.strip() for c in row[cols.width:])):
            # too short, or extra non-empty fields (e.g. an unquoted "1,234.50" split in two):
            # reading it would put values in the wrong columns
            skipped.append(f"line {line}: {len(row)} fields, expected {cols.width}")
            continue
        raw_date = cell(row, cols.date)
        when = _parse_date(_clean_date(raw_date), date_fmt) if raw_date else None
        if when is None:
            skipped.append(f"line {line}: no date" if not raw_date else f"line {line}: not a date {raw_date[:30]!r}")
            continue
        try:
            if cols.amount is not None:
                amount = parse_amount(cell(row, cols.amount), decimal)
            else:
                debit = parse_amount(cell(row, cols.debit), decimal)
                credit = parse_amount(cell(row, cols.credit), decimal)
                amount = None if debit is None and credit is None else abs(credit or 0) - abs(debit or 0)
        except StatementError as exc:
            skipped.append(f"line {line}: {exc}")
            continue
        if amount is None:
            skipped.append(f"line {line}: no amount")
            continue
        description = " / ".join(dict.fromkeys(" ".join(cell(row, c).split()) for c in cols.description if cell(row, c)))
        currency = ""
        if cols.currency is not None:
            currency = _currency_of(cell(row, cols.currency)) or cell(row, cols.currency).upper()
        if not currency and cols.amount is not None:
            currency = _currency_of(cell(row, cols.amount)) or ""
        currency = currency or file_currency or default_currency or ""
        transactions.append(Transaction(when, description, amount, currency, line))
        flags.append(cell(row, cols.indicator).lower())
    indicator_used = False
    if cols.amount is not None and cols.indicator is not None and all(tx.amount >= 0 for tx in transactions):
        # unsigned amounts with a DR/CR (S/H, debit/credit) column beside them
        for tx, flag in zip(transactions, flags):
            if flag in _NEGATIVE_INDICATORS:
                tx.amount, indicator_used = -tx.amount, True
            elif flag in _POSITIVE_INDICATORS:
                indicator_used = True
    if not transactions:
        reason = skipped[0] if skipped else "no data rows"
        raise StatementError(f"no transactions found ({reason})")
    dialect = {
        "delimiter": "tab" if delimiter == "\t" else delimiter,
        "header_line": header_line,
        "date_format": date_label,
        "date_format_ambiguous": ambiguous,
        "decimal": decimal,
        "amounts": "debit/credit" if cols.amount is None else ("amount+indicator" if indicator_used else "signed"),
        "columns": cols.header,
    }
    return Statement(transactions, skipped, dialect)


# --------------------------------------------------------------------------------------------
# Job report (finalize)
# --------------------------------------------------------------------------------------------


def _read_transactions(job: JobContext) -> Iterator[dict[str, str]]:
    out_dir = Path(job.output_dir)
    for rel, status, result, _error in job.results():
        if status != "done" or not result or not result.get("output"):
            continue
        target = (out_dir / result["output"]).resolve()
        if out_dir.resolve() not in target.parents:
            log.warning("statements report: %s points outside the output folder; skipped", rel)
            continue
        try:
            with open(target, newline="", encoding="utf-8") as fh:
                yield from csv.DictReader(fh)
        except OSError as exc:
            log.warning("statements report: cannot read %s: %s", target, exc)


def write_report(job: JobContext) -> tuple[Path, Path]:
    """Finalize hook: ``statements_report.csv`` (long format) and ``statements_report.xlsx``."""
    out_dir = Path(job.output_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    txs = []
    for row in _read_transactions(job):
        try:
            row["_amount"] = Decimal(row["amount"])  # type: ignore[assignment]
        except (InvalidOperation, KeyError, TypeError):
            continue
        txs.append(row)
    txs.sort(key=lambda r: (r["date"], r.get("source", ""), int(r.get("line") or 0)))
    totals: dict[tuple[str, str, str], list[Any]] = {}
    for row in txs:
        key = (row["date"][:7], row["category"], row["currency"])
        entry = totals.setdefault(key, [Decimal(0), 0])
        entry[0] += row["_amount"]
        entry[1] += 1

    csv_path = out_dir / REPORT_CSV
    part = csv_path.with_name(f".{csv_path.name}.part")
    with open(part, "w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(["kind", "month", "category", "currency", "amount", "count", "date", "description", "source", "line"])
        for (month, category, currency), (amount, count) in sorted(totals.items()):
            writer.writerow(["total", month, category, currency, _fmt(amount), count, "", "", "", ""])
        for row in txs:
            writer.writerow([
                "transaction", row["date"][:7], row["category"], row["currency"], row["amount"], 1,
                row["date"], row["description"], row.get("source", ""), row.get("line", ""),
            ])  # fmt: skip
    os.replace(part, csv_path)
    xlsx_path = _write_xlsx(out_dir / REPORT_XLSX, totals, txs)
    log.info("job %s: statements report with %d transactions written to %s", job.job_id, len(txs), out_dir)
    return csv_path, xlsx_path


def _safe_cell(value: Any) -> Any:
    """Text for a spreadsheet cell: no control characters (openpyxl refuses them)."""
    if isinstance(value, str):
        from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE

        value = ILLEGAL_CHARACTERS_RE.sub("", value)
    return value


def _no_formulas(sheet: Any) -> None:
    """openpyxl stores text starting with "=" as a formula: make every such cell plain text."""
    for row in sheet.iter_rows():
        for c in row:
            if c.data_type == "f":
                c.data_type = "s"


def _write_xlsx(target: Path, totals: dict[tuple[str, str, str], list[Any]], txs: list[dict[str, Any]]) -> Path:
    from openpyxl import Workbook
    from openpyxl.styles import Font

    money = "#,##0.00;[Red]-#,##0.00"
    bold = Font(bold=True)
    wb = Workbook()
    summary = wb.active
    summary.title = "Summary"
    months = sorted({m for m, _, _ in totals})
    summary.append(["Category", "Currency", *months, "Total"])
    for c in summary[1]:
        c.font = bold
    pivot: dict[tuple[str, str], dict[str, Decimal]] = defaultdict(dict)
    for (month, category, currency), (amount, _count) in totals.items():
        pivot[(category, currency)][month] = amount
    currencies = sorted({cur for _, cur in pivot})
    for currency in currencies:
        column_totals: dict[str, Decimal] = defaultdict(Decimal)
        for (category, cur), by_month in sorted(pivot.items()):
            if cur != currency:
                continue
            row: list[Any] = [_safe_cell(category), currency]
            for month in months:
                value = by_month.get(month)
                row.append(float(value) if value is not None else None)
                if value is not None:
                    column_totals[month] += value
            row.append(float(sum(by_month.values(), Decimal(0))))
            summary.append(row)
        total_row = ["Total", currency, *(float(column_totals[m]) for m in months), float(sum(column_totals.values(), Decimal(0)))]
        summary.append(total_row)
        for c in summary[summary.max_row]:
            c.font = bold
    for row in summary.iter_rows(min_row=2, min_col=3):
        for c in row:
            c.number_format = money
    summary.column_dimensions["A"].width = 24
    summary.freeze_panes = "C2"

    sheet = wb.create_sheet("Transactions")
    sheet.append(["Date", "Description", "Amount", "Currency", "Category", "Source", "Line"])
    for c in sheet[1]:
        c.font = bold
    for row in txs:
        sheet.append([
            date.fromisoformat(row["date"]), _safe_cell(row["description"]), float(row["_amount"]),
            row["currency"], _safe_cell(row["category"]), _safe_cell(row.get("source", "")),
            int(row["line"]) if str(row.get("line", "")).isdigit() else None,
        ])  # fmt: skip
    for (d, _desc, amount, *_rest) in sheet.iter_rows(min_row=2, max_col=3):
        d.number_format = "yyyy-mm-dd"
        amount.number_format = money
    for col, width in zip("ABCDEFG", (12, 48, 14, 9, 22, 40, 7)):
        sheet.column_dimensions[col].width = width
    sheet.freeze_panes = "A2"
    _no_formulas(summary)
    _no_formulas(sheet)
    part = target.with_name(f".{target.name}.part")
    wb.save(part)
    os.replace(part, target)
    return target


# --------------------------------------------------------------------------------------------
# The task
# --------------------------------------------------------------------------------------------

_NOT_CSV = {"pdf", "zip", "docx", "xlsx", "pptx", "png", "jpeg", "gif", "gzip", "ole", "binary", "sqlite"}


@task(
    "statements",
    description="bank-statement CSV exports -> categorised transactions and a monthly report",
    options=OPTIONS,
    finalize=write_report,
    cost_per_item=0.005,
    cost_per_byte=2e-7,
)
def statements(path: Path, ctx: TaskContext) -> dict:
    """Normalise and categorise one statement export; write <name>.transactions.csv."""
    options = dict(ctx.options)
    path = Path(path)
    try:
        rules = load_rules(resolve_rules_path(options.get("rules"), ctx.source_root))
    except StatementError as exc:
        raise ItemError(str(exc)) from None
    data = read_limited(path, 64 << 20)
    if not data.strip():
        raise ItemError("empty file")
    kind = sniff_type(data[:4096], len(data) <= 4096)
    if kind in _NOT_CSV:
        raise ItemError(f"not a CSV statement (looks like {kind})")
    text, encoding = decode_text(data, str(options.get("encoding") or "auto"))
    try:
        statement = parse_statement(text, options)
    except StatementError as exc:
        raise ItemError(str(exc)) from None
    except ItemError:
        raise

    totals: dict[str, dict[str, Decimal]] = defaultdict(lambda: {"in": Decimal(0), "out": Decimal(0)})
    by_category: dict[str, Decimal] = defaultdict(Decimal)
    for tx in statement.transactions:
        tx.category = rules.categorise(tx.description, tx.amount)
        totals[tx.currency]["in" if tx.amount > 0 else "out"] += tx.amount
        by_category[tx.category] += tx.amount

    target = output_file(ctx, path, ".transactions.csv")
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(TRANSACTION_COLUMNS)
    for tx in statement.transactions:
        writer.writerow([tx.date.isoformat(), tx.description, _fmt(tx.amount), tx.currency, tx.category, ctx.rel_path, tx.line])
    write_atomic(target, buf.getvalue())
    dates = [tx.date for tx in statement.transactions]
    return {
        "transactions": len(statement.transactions),
        "skipped": len(statement.skipped),
        "skipped_examples": statement.skipped[:3],
        "first_date": min(dates).isoformat(),
        "last_date": max(dates).isoformat(),
        "totals": {cur: {k: float(v) for k, v in t.items()} for cur, t in sorted(totals.items())},
        "categories": {k: float(v) for k, v in sorted(by_category.items())},
        "encoding": encoding,
        "rules": rules.path,
        **statement.dialect,
        "output": relative_to_output(ctx.output_dir, target),
    }
