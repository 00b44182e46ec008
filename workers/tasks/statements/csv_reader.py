"""CSV statement exports -> transactions, everything decided from the whole file rather than row by row.

* the delimiter (``csv.Sniffer``, then scoring , ; TAB |) and the header row (a preamble of account
  details is skipped; files without a header are recognised from their contents);
* the date format (see :mod:`dates`), the decimal mark, and signs as -12.50, 12.50-, (12.50),
  12.50 DR / CR or an indicator column;
* a single signed amount column or separate debit and credit columns (money out is negative);
* the currency (see :mod:`currency`), and stated balances: a running balance column, or opening /
  closing balance lines around the table.
"""

from __future__ import annotations

import contextlib
import csv
import io
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal

from workers.tasks._common import check_is_text
from workers.tasks.statements import currency as cur
from workers.tasks.statements.amounts import (
    NEGATIVE_INDICATORS,
    POSITIVE_INDICATORS,
    decide_decimal,
    looks_numeric,
    parse_amount,
)
from workers.tasks.statements.dates import (
    DateChoice,
    DateHints,
    ambiguity_warning,
    choose_date_format,
)
from workers.tasks.statements.dialect import Columns, columns_from_header
from workers.tasks.statements.model import Statement, StatementError, Transaction
from workers.tasks.statements.reconcile import balance_kind

Rows = list[tuple[int, list[str]]]
_DELIMS = {"auto": None, ",": ",", ";": ";", "tab": "\t", "|": "|"}


def _rows(text: str, delimiter: str) -> Rows:
    reader = csv.reader(io.StringIO(text), delimiter=delimiter, skipinitialspace=True, strict=False)
    try:
        out = [(reader.line_num, row) for row in reader]
    except csv.Error as exc:
        raise StatementError(f"not valid CSV: {exc}") from None
    return out


def _find_header(rows: Rows) -> tuple[int, Columns] | None:
    for index, (_line, row) in enumerate(rows[:50]):
        if len(row) < 2:
            continue
        cols = columns_from_header(row)
        if cols:
            return index, cols
    return None


def _choose_delimiter(text: str, wanted: str | None) -> tuple[str, Rows, tuple[int, Columns] | None]:
    if wanted:
        rows = _rows(text, wanted)
        return wanted, rows, _find_header(rows)
    candidates: list[str] = []
    with contextlib.suppress(csv.Error):
        candidates.append(csv.Sniffer().sniff(text[:20000], delimiters=",;\t|").delimiter)
    candidates += [d for d in (",", ";", "\t", "|") if d not in candidates]
    best: tuple[tuple[int, int, int], str, Rows, tuple[int, Columns] | None] | None = None
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


def _infer_columns(rows: Rows) -> Columns | None:
    """Headerless file: the column that is all dates, the first all-amount column, the widest text."""
    body = [r for _, r in rows if any(c.strip() for c in r)]
    if len(body) < 2:
        return None
    width = Counter(len(r) for r in body).most_common(1)[0][0]
    body = [r for r in body if len(r) == width]
    date_col = amount_col = None
    for col in range(width):
        values = [r[col] for r in body]
        if date_col is None and _all_dates(values):
            date_col = col
            continue
        if amount_col is None and all(looks_numeric(v) for v in values if v.strip()) and any(v.strip() for v in values):
            amount_col = col
    if date_col is None or amount_col is None:
        return None
    text_cols = [c for c in range(width) if c not in (date_col, amount_col)]
    if not text_cols:
        return None
    desc = max(text_cols, key=lambda c: sum(len(r[c]) for r in body))
    return Columns(date=date_col, description=[desc], amount=amount_col, width=width)


def _all_dates(values: list[str]) -> bool:
    try:
        choose_date_format(values)
    except StatementError:
        return False
    return True


def _cell(row: list[str], index: int | None) -> str:
    return row[index].strip() if index is not None and index < len(row) else ""


@dataclass
class _Layout:
    """How a file is laid out, decided before its rows are read."""

    delimiter: str
    cols: Columns
    data_rows: Rows
    preamble: Rows
    header_line: int | None
    decimal: str
    dates: DateChoice


def _layout(text: str, options: Mapping[str, object]) -> _Layout:
    delimiter, rows, header = _choose_delimiter(text, _DELIMS.get(str(options.get("delimiter", "auto"))))
    if header:
        index, cols = header
        data_rows, preamble, header_line = rows[index + 1 :], rows[:index], rows[index][0]
    else:
        inferred = _infer_columns(rows)
        if inferred is None:
            raise StatementError(
                "no header row with a date and an amount (or debit/credit) column in the first 50 lines"
            )
        cols, data_rows, preamble, header_line = inferred, rows, [], None
    want = str(options.get("decimal") or "auto")
    values = [_cell(r, c) for _, r in data_rows for c in cols.money]
    decimal = want if want != "auto" else decide_decimal(values, "," if delimiter == ";" else ".")
    width = max(cols.date, *cols.money)
    dated = [_cell(r, cols.date) for _, r in data_rows if len(r) > width and _cell(r, cols.date)]
    symbols = cur.most_common(cur.currency_of(v) for v in values[:500] if v)
    option = str(options.get("currency") or "").upper() or None
    hints = DateHints(currency=cols.currency_hint or symbols or option, decimal=decimal)
    dates = choose_date_format(dated, str(options.get("date_order") or "auto"), hints)
    return _Layout(delimiter, cols, data_rows, preamble, header_line, decimal, dates)


def parse_statement(text: str, options: Mapping[str, object] | None = None) -> Statement:
    """Parse a whole statement export into transactions (not yet categorised)."""
    options = options or {}
    check_is_text(text)
    if not text.strip():
        raise StatementError("empty file")
    layout = _layout(text, options)
    statement, flags = _read_rows(layout)
    _apply_indicator(layout, statement, flags)
    if not statement.transactions:
        reason = statement.skipped[0] if statement.skipped else "no data rows"
        raise StatementError(f"no transactions found ({reason})")
    _decide_currency(layout, statement, options)
    warning = ambiguity_warning(layout.dates)
    if warning:
        statement.warnings.append(warning)
    cols = layout.cols
    statement.dialect.update({
        "delimiter": "tab" if layout.delimiter == "\t" else layout.delimiter,
        "header_line": layout.header_line,
        "date_format": layout.dates.label,
        "date_format_ambiguous": layout.dates.ambiguous,
        "date_format_basis": layout.dates.basis,
        "decimal": layout.decimal,
        "columns": cols.header,
    })  # fmt: skip
    return statement


def _read_rows(layout: _Layout) -> tuple[Statement, list[str]]:
    """Every data row as a transaction, a stated balance, or a skipped line with its reason; and
    each transaction's indicator cell (DR/CR...)."""
    statement = Statement([], [], {"format": "csv"})
    flags: list[str] = []
    cols = layout.cols
    width = max(cols.date, *cols.money)
    for _line, row in layout.preamble:
        _balance_row(row, layout, statement)
    for line, row in layout.data_rows:
        if not any(c.strip() for c in row):
            continue
        if len(row) <= width or (len(row) > cols.width and any(c.strip() for c in row[cols.width :])):
            # too short, or extra non-empty fields (e.g. an unquoted "1,234.50" split in two):
            # reading it would put values in the wrong columns
            if not _balance_row(row, layout, statement):
                statement.skipped.append(f"line {line}: {len(row)} fields, expected {cols.width}")
            continue
        try:
            tx = _transaction(line, row, layout)
        except StatementError as exc:
            if not _balance_row(row, layout, statement):
                statement.skipped.append(f"line {line}: {exc}")
            continue
        statement.transactions.append(tx)
        flags.append(_cell(row, cols.indicator).lower())
    return statement, flags


def _transaction(line: int, row: list[str], layout: _Layout) -> Transaction:
    cols = layout.cols
    raw_date = _cell(row, cols.date)
    when = layout.dates.parse(raw_date) if raw_date else None
    if when is None:
        raise StatementError("no date" if not raw_date else f"not a date {raw_date[:30]!r}")
    if cols.amount is not None:
        amount = parse_amount(_cell(row, cols.amount), layout.decimal)
    else:
        debit = parse_amount(_cell(row, cols.debit), layout.decimal)
        credit = parse_amount(_cell(row, cols.credit), layout.decimal)
        zero = Decimal(0)
        amount = None if debit is None and credit is None else abs(credit or zero) - abs(debit or zero)
    if amount is None:
        raise StatementError("no amount")
    parts = (" ".join(_cell(row, c).split()) for c in cols.description)
    description = " / ".join(dict.fromkeys(p for p in parts if p))
    currency = ""
    if cols.currency is not None:
        currency = cur.currency_of(_cell(row, cols.currency)) or _cell(row, cols.currency).upper()
    if not currency and cols.amount is not None:
        currency = cur.currency_of(_cell(row, cols.amount)) or ""
    balance = _balance_cell(row, layout)
    return Transaction(when, description, amount, currency, line, balance=balance)


def _balance_cell(row: list[str], layout: _Layout) -> Decimal | None:
    try:
        return parse_amount(_cell(row, layout.cols.balance), layout.decimal)
    except StatementError:
        return None


def _balance_row(row: list[str], layout: _Layout, statement: Statement) -> bool:
    """A row stating the opening or closing balance (before, in or after the table)."""
    kind = balance_kind(" ".join(row))
    if kind is None:
        return False
    for cell in reversed(row):
        try:
            value = parse_amount(cell, layout.decimal) if looks_numeric(cell) else None
        except StatementError:
            continue
        if value is not None:
            if kind == "opening" and statement.opening_balance is None:
                statement.opening_balance = value
            elif kind == "closing":
                statement.closing_balance = value
            return True
    return False


def _apply_indicator(layout: _Layout, statement: Statement, flags: list[str]) -> None:
    """Unsigned amounts with a DR/CR (S/H, debit/credit) column beside them take its sign."""
    used = False
    cols = layout.cols
    signed = cols.amount is not None and cols.indicator is not None
    if signed and all(tx.amount >= 0 for tx in statement.transactions):
        for tx, flag in zip(statement.transactions, flags, strict=True):
            if flag in NEGATIVE_INDICATORS:
                tx.amount, used = -tx.amount, True
            elif flag in POSITIVE_INDICATORS:
                used = True
    statement.dialect["amounts"] = "debit/credit" if cols.amount is None else ("amount+indicator" if used else "signed")


def _decide_currency(layout: _Layout, statement: Statement, options: Mapping[str, object]) -> None:
    cols = layout.cols
    values = [_cell(r, c) for _, r in layout.data_rows[:500] for c in cols.money]
    preamble = "\n".join(" ".join(r) for _, r in layout.preamble)
    all_text = preamble + "\n" + "\n".join(" ".join(r) for _, r in layout.data_rows[:200])
    evidence = cur.Evidence(
        header=cols.currency_hint,
        amounts=cur.most_common(cur.currency_of(v) for v in values if v),
        text=cur.most_common(cur.marks_in_text(preamble).elements()),
        iban=cur.iban_currency(preamble) or cur.iban_currency(all_text),
        words=cols.words_currency,
        option=str(options.get("currency") or "").upper() or None,
        locale=cur.locale_guess(layout.decimal, layout.dates.order, cols.language or "en"),
    )
    code, source = cur.decide(evidence)
    if cols.currency is not None and all(tx.currency for tx in statement.transactions):
        code, source = cur.most_common(tx.currency for tx in statement.transactions) or code, "column"
    statement.currency, statement.currency_source = code, source
    for tx in statement.transactions:
        tx.currency = tx.currency or code
    statement.warnings.extend(currency_warnings(code, source))


def currency_warnings(code: str, source: str) -> list[str]:
    """What a person should know about a currency that the file did not state."""
    if source == "unknown":
        return [("currency unknown: this file's totals are kept apart from every other file; "
                 "name it with --opt currency=XXX")]
    if source == "locale":
        return [(f"currency {code} guessed from the number format and header words only; "
                 "if wrong, name it with --opt currency=XXX")]
    return []
