"""PDF statements -> transactions, read from the text layer's word positions (workers/pdf.py).

Each page's transaction table is found by its header line (a date column and an amount, or
money-out / money-in columns; a balance column is the running balance). A page without a header
continues the previous page's table. Per line below the header:

* a date and an amount: a transaction (a later date-less line with an amount is one too, on the
  same date, as banks print the date once per day);
* a date and no amount: a transaction whose amount follows on a later line;
* text only, right below a transaction: its description wrapped onto another line;
* "Opening balance", "Balance brought forward", "Closing balance", "Neuer Kontostand" ...: a
  stated balance, not a transaction (anywhere on the page); "Total ..." lines are skipped.

Amounts: separate debit/credit columns or one signed column (-12.50, 12.50-, (12.50), 12.50 DR,
12.50 CR; where only credits carry CR, the others are debits). Dates without a year take it from
the statement period ("Statement period 1 March 2024 to 31 March 2024", "Zeitraum: 01.03.2024 -
31.03.2024"). A PDF without any text is refused with "no text layer".
"""

from __future__ import annotations

import re
import statistics
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from pathlib import Path

from workers.pdf import PdfError, PdfPasswordError, open_pdf
from workers.tasks.statements import currency as cur
from workers.tasks.statements.amounts import decide_decimal, parse_amount
from workers.tasks.statements.csv_reader import currency_warnings
from workers.tasks.statements.dates import (
    DateChoice,
    DateHints,
    ambiguity_warning,
    choose_date_format,
    clean_date,
    parse_date,
    resolve_year,
)
from workers.tasks.statements.model import Statement, StatementError, Transaction
from workers.tasks.statements.pdf_layout import (
    DATE_LIKE,
    Column,
    Line,
    Phrase,
    Table,
    is_money,
    page_lines,
    table_from_header,
)
from workers.tasks.statements.reconcile import balance_kind, balance_mentions

MAX_PAGES = 500
_TOTAL = re.compile(r"\b(?:sub)?totals?\b|\bsumme\b|\bgesamt|\btotal\s+(?:money|paid|debits|credits)", re.IGNORECASE)
_CONTINUATION_PITCH = 1.8  # a wrapped description line is at most this many row pitches below its row
_MONEY_IN_TEXT = re.compile(r"(?<![\w.,])[-+\u2212(]?\s*[£€$]?\s*\d{1,3}(?:[,.'\u00a0 ]\d{3})*[.,]\d{2}\)?"
                            r"(?:\s?(?:CR|DR|-))?(?![\w.,])")


@dataclass
class Row:
    """A table row before its amount and date are interpreted."""

    line: Line
    date_text: str | None
    description: list[str]
    money: dict[str, str] = field(default_factory=dict)  # role -> money text

    @property
    def has_amount(self) -> bool:
        return any(role in self.money for role in ("amount", "debit", "credit"))


@dataclass
class Page:
    """What one page adds: table rows, text lines outside the table, stated balances."""

    rows: list[Row] = field(default_factory=list)
    balances: list[tuple[str, bool, str]] = field(default_factory=list)  # (kind, strong, money text)
    text: list[str] = field(default_factory=list)  # lines outside the table (period, IBAN, currency)
    skipped: list[str] = field(default_factory=list)


def parse_pdf_statement(path: Path, options: Mapping[str, object]) -> Statement:
    """Read a PDF statement's transaction tables into a Statement (not yet categorised)."""
    try:
        with open_pdf(path) as doc:
            if doc.page_count > MAX_PAGES:
                raise StatementError(f"the PDF has {doc.page_count} pages; statements reads at most {MAX_PAGES}")
            if not doc.has_text_layer():
                raise StatementError("no text layer (a scanned or image-only PDF): OCR it first, then run again")
            lines = [page_lines(page) for page in doc.pages()]
            page_count = doc.page_count
    except PdfPasswordError:
        raise StatementError("the PDF is password-protected: save an unprotected copy and run again") from None
    except PdfError as exc:
        raise StatementError(str(exc)) from None
    pages, tables = _read_pages(lines)
    if not tables:
        raise StatementError("no transaction table found in the PDF (no header line naming a date and an amount)")
    return _build(pages, tables, options, page_count)


def _read_pages(lines: list[list[Line]]) -> tuple[list[Page], list[Table]]:
    table: Table | None = None
    tables: list[Table] = []
    pages = []
    for page_lines_ in lines:
        found = _find_header(page_lines_)
        header = found[0] if found else None
        if found:
            table = found[1]
            tables.append(table)
        page = Page()
        start = header + 1 if header is not None else 0
        for line in page_lines_[:start]:
            _outside(line, page)
        if table is None:
            continue
        _read_table(page_lines_[start:], table, page)
        pages.append(page)
    return pages, tables


def _find_header(lines: list[Line]) -> tuple[int, Table] | None:
    """The page's first header line and its table."""
    for index, line in enumerate(lines):
        table = table_from_header(line)
        if table is not None:
            return index, table
    return None


def _outside(line: Line, page: Page) -> None:
    """A line outside the table: it may state a balance, the period, the account."""
    page.text.append(line.text)
    page.balances += _balances(line.text)


def _balances(text: str) -> list[tuple[str, bool, str]]:
    """Every balance a line states: (opening/closing, strong, money text)."""
    found = []
    kinds = balance_mentions(text)
    for index, (start, kind) in enumerate(kinds):
        end = kinds[index + 1][0] if index + 1 < len(kinds) else len(text)
        money = _MONEY_IN_TEXT.search(text, start, end)
        if money:
            strong = not re.search(r"forward|b/?f|c/?f", text[start:money.start()], re.IGNORECASE)
            found.append((kind, strong, money.group(0).strip()))
    return found


def _read_table(lines: list[Line], table: Table, page: Page) -> None:
    last_y: float | None = None
    pitches: list[float] = []
    for line in lines:
        if balance_kind(line.text):
            _outside(line, page)
            last_y = line.y0
            continue
        row = _row(line, table)
        pitch = statistics.median(pitches) if pitches else 1.6 * line.height
        near = last_y is not None and last_y - line.y1 <= _CONTINUATION_PITCH * pitch
        if row.date_text is not None or (row.has_amount and near):
            if _TOTAL.search(" ".join(row.description)):
                page.skipped.append(f"page {line.page} line {line.number}: a total, not a transaction")
                continue
            if last_y is not None and row.date_text is not None:
                pitches.append(last_y - line.y0)
            page.rows.append(row)
            last_y = line.y0
        elif near and page.rows and row.description and not row.money:
            page.rows[-1].description += row.description  # a wrapped description
            last_y = line.y0
        else:
            page.text.append(line.text)


def _row(line: Line, table: Table) -> Row:
    """A line's phrases put in the table's columns: the date, the money, the description."""
    date_col = table.column("date")
    assert date_col is not None
    row = Row(line, None, [])
    money_cols = table.money
    first_money = min(c.x0 for c in money_cols) if money_cols else float("inf")
    for index, phrase in enumerate(line.phrases):
        text = phrase.text
        if index == 0 and row.date_text is None and phrase.x0 < table.after(date_col) and DATE_LIKE.match(text):
            row.date_text = text
        elif is_money(text) and phrase.x1 >= first_money - 5 and money_cols:
            row.money.setdefault(_nearest(phrase, money_cols).role, text)
        elif not _in_zone(phrase, table, ("date2", "indicator")):
            row.description.append(text)
    return row


def _nearest(phrase: Phrase, columns: list[Column]) -> Column:
    def distance(col: Column) -> tuple[float, float]:
        gap = max(0.0, col.x0 - phrase.x1, phrase.x0 - col.x1)
        return gap, abs((col.x0 + col.x1) / 2 - (phrase.x0 + phrase.x1) / 2)

    return min(columns, key=distance)


def _in_zone(phrase: Phrase, table: Table, roles: tuple[str, ...]) -> bool:
    """Whether a phrase sits in one of these text columns (a value date, a type code)."""
    return any(col.role in roles and col.x0 - 2 <= phrase.x0 < table.after(col) for col in table.columns)


# --------------------------------------------------------------------------------------------
# Interpretation: decimal mark, dates, signs, balances, currency
# --------------------------------------------------------------------------------------------


def _build(pages: list[Page], tables: list[Table], options: Mapping[str, object], page_count: int) -> Statement:
    rows = [row for page in pages for row in page.rows]
    text = "\n".join(line for page in pages for line in page.text)
    money_texts = [m for row in rows for m in row.money.values()] + [b[2] for p in pages for b in p.balances]
    want = str(options.get("decimal") or "auto")
    decimal = want if want != "auto" else decide_decimal(money_texts, ".")
    period = find_period(text)
    hints = DateHints(currency=_stated_currency(tables, rows, text), decimal=decimal, period=period)
    dated = [row.date_text for row in rows if row.date_text]
    if not dated:
        raise StatementError("no transactions found in the PDF's tables (no dated rows)")
    choice = choose_date_format(dated, str(options.get("date_order") or "auto"), hints, allow_yearless=True)
    statement = Statement([], [s for p in pages for s in p.skipped], {})
    _transactions(rows, choice, decimal, period, text, statement)
    if not statement.transactions:
        reason = statement.skipped[0] if statement.skipped else "no rows with a date and an amount"
        raise StatementError(f"no transactions found ({reason})")
    _stated_balances(pages, decimal, statement)
    _decide_currency(tables, rows, text, decimal, choice, options, statement)
    warning = ambiguity_warning(choice)
    statement.warnings += [warning] if warning else []
    statement.dialect.update({
        "format": "pdf", "pages": page_count, "date_format": choice.label,
        "date_format_ambiguous": choice.ambiguous, "date_format_basis": choice.basis, "decimal": decimal,
        "amounts": "debit/credit" if tables[0].column("debit") else "signed",
        "columns": [c.title for c in tables[0].columns],
        "period": [period[0].isoformat(), period[1].isoformat()] if period else None,
    })  # fmt: skip
    return statement


def _transactions(rows: list[Row], choice: DateChoice, decimal: str, period: tuple[date, date] | None,
                  text: str, statement: Statement) -> None:
    fallback_year = _any_year(text)
    credits_marked = _only_credits_marked(rows)
    current: date | None = None
    for row in rows:
        where = f"page {row.line.page} line {row.line.number}"
        if row.date_text is not None:
            current = _date(row.date_text, choice, period, fallback_year)
            if current is None:
                statement.skipped.append(f"{where}: not a date {row.date_text!r}")
                continue
        if current is None or not row.has_amount:
            statement.skipped.append(f"{where}: no amount" if current else f"{where}: no date")
            continue
        try:
            amount = _amount(row, decimal, credits_marked)
            balance = parse_amount(_plain(row.money["balance"]), decimal) if "balance" in row.money else None
        except StatementError as exc:
            statement.skipped.append(f"{where}: {exc}")
            continue
        description = " ".join(" ".join(row.description).split())
        statement.transactions.append(Transaction(current, description, amount, "", row.line.ref, balance=balance))


def _date(raw: str, choice: DateChoice, period: tuple[date, date] | None, fallback_year: int | None) -> date | None:
    value = choice.parse(raw)
    if value is not None and choice.yearless:
        return resolve_year(value, period, fallback_year)
    return value


def _plain(money: str) -> str:
    """German Soll/Haben suffixes as signs: '45,10 S' -> '45,10-'."""
    text = money.strip()
    if text.endswith((" S", "S")) and text[:-1].rstrip()[-1:].isdigit():
        return text[:-1].rstrip() + "-"
    if text.endswith((" H", "H")) and text[:-1].rstrip()[-1:].isdigit():
        return text[:-1].rstrip()
    return text


def _only_credits_marked(rows: list[Row]) -> bool:
    """In one signed column where some amounts say CR and none says DR or has a minus, the
    unmarked ones are debits (a credit-card style statement)."""
    texts = [_plain(row.money["amount"]).upper() for row in rows if "amount" in row.money]
    marked = any(t.endswith("CR") for t in texts)
    negative = any(t.endswith(("DR", "-", ")")) or t.startswith(("-", "(", "\u2212")) for t in texts)
    return marked and not negative


def _amount(row: Row, decimal: str, credits_marked: bool) -> Decimal:
    if "amount" in row.money:
        raw = _plain(row.money["amount"])
        value = parse_amount(raw, decimal)
        if value is None:
            raise StatementError(f"cannot read amount {raw!r}")
        if credits_marked and not raw.upper().endswith("CR"):
            value = -abs(value)
        return value
    debit = parse_amount(_plain(row.money.get("debit", "")), decimal)
    credit = parse_amount(_plain(row.money.get("credit", "")), decimal)
    return abs(credit or Decimal(0)) - abs(debit or Decimal(0))


def _stated_balances(pages: list[Page], decimal: str, statement: Statement) -> None:
    """The first opening balance (an explicit one before a 'brought forward') and the last closing
    balance (an explicit one before a 'carried forward')."""
    found = [b for page in pages for b in page.balances]
    openings = [b for b in found if b[0] == "opening"]
    closings = [b for b in found if b[0] == "closing"]
    opening = next((b for b in openings if b[1]), openings[0] if openings else None)
    closing = next((b for b in reversed(closings) if b[1]), closings[-1] if closings else None)
    if opening:
        statement.opening_balance = parse_amount(_plain(opening[2]), decimal)
    if closing:
        statement.closing_balance = parse_amount(_plain(closing[2]), decimal)


def _stated_currency(tables: list[Table], rows: list[Row], text: str) -> str | None:
    hint = next((c.currency_hint for t in tables for c in t.money if c.currency_hint), None)
    return hint or cur.most_common(cur.currency_of(m) for r in rows for m in r.money.values()) or \
        cur.most_common(cur.marks_in_text(text).elements())


def _decide_currency(tables: list[Table], rows: list[Row], text: str, decimal: str, choice: DateChoice,
                     options: Mapping[str, object], statement: Statement) -> None:
    languages = [c.language for t in tables for c in t.columns if c.language != "any"]
    evidence = cur.Evidence(
        header=next((c.currency_hint for t in tables for c in t.money if c.currency_hint), None),
        amounts=cur.most_common(cur.currency_of(m) for r in rows for m in r.money.values()),
        text=cur.most_common(cur.marks_in_text(text).elements()),
        iban=cur.iban_currency(text),
        option=str(options.get("currency") or "").upper() or None,
        locale=cur.locale_guess(decimal, choice.order, max(set(languages), key=languages.count) if languages else "en"),
    )
    code, source = cur.decide(evidence)
    statement.currency, statement.currency_source = code, source
    for tx in statement.transactions:
        tx.currency = code
    statement.warnings.extend(currency_warnings(code, source))


# --------------------------------------------------------------------------------------------
# Statement period
# --------------------------------------------------------------------------------------------

_DATE_TOKEN = (r"(\d{4}-\d{2}-\d{2}|\d{1,2}[./-]\d{1,2}[./-]\d{2,4}|\d{1,2}\.?\s+[^\W\d_]{3,9}\.?,?\s+\d{4}"
               r"|[^\W\d_]{3,9}\.?\s+\d{1,2},?\s+\d{4})")
_PERIOD = re.compile(_DATE_TOKEN + r"\s*(?:-|–|—|to|bis|until|through|thru|au)\s*" + _DATE_TOKEN, re.IGNORECASE)
_YEAR = re.compile(r"\b(19\d{2}|20\d{2})\b")


def find_period(text: str) -> tuple[date, date] | None:
    """The statement period: the first two dates joined by 'to', 'bis', '-' ... that read as a
    range (start <= end, at most a year apart)."""
    for m in _PERIOD.finditer(text):
        pair = [m.group(1), m.group(2)]
        try:
            choice = choose_date_format(pair)
        except StatementError:
            continue
        start, end = (parse_date(clean_date(v), choice.fmt) for v in pair)
        if start and end and start <= end and (end - start).days <= 400:
            return start, end
    return None


def _any_year(text: str) -> int | None:
    """A year printed anywhere outside the table (a statement date), for dates without one."""
    years = _YEAR.findall(text)
    return int(max(set(years), key=years.count)) if years else None

