"""The job report (the task's finalize step): monthly totals per currency and category, the
reconciliation of every statement, the warnings, and a small JSON summary for the TUI.

* ``statements_report.csv`` (long format): ``kind`` = ``total`` rows per month/category/currency,
  then every ``transaction``, then one ``statement`` row per file (its balance check), then the
  ``warning`` rows;
* ``statements_report.xlsx``: sheets "Summary" (category x month pivot, one block per currency),
  "Transactions", "Statements" and "Warnings";
* ``statements_summary.json``: what the job detail screen shows (read by
  ``ui/widgets/statements_summary.py``).

Amounts of different currencies are never added: each block is one currency, and a file whose
currency is unknown gets a block of its own (``source`` names it).
"""

from __future__ import annotations

import csv
import json
import logging
import os
from collections import defaultdict
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import TYPE_CHECKING

from workers.registry import JobContext
from workers.tasks.statements.amounts import fmt

if TYPE_CHECKING:
    from openpyxl.workbook.workbook import Workbook
    from openpyxl.worksheet.worksheet import Worksheet

log = logging.getLogger("batchdesk.task.statements")

REPORT_CSV = "statements_report.csv"
REPORT_XLSX = "statements_report.xlsx"
SUMMARY_JSON = "statements_summary.json"
CSV_COLUMNS = ["kind", "month", "category", "currency", "amount", "count", "date", "description", "source", "line"]
UNCATEGORISED_SHOWN = 200  # the JSON summary lists at most this many uncategorised transactions
Cell = str | int | float | date | None
# (month, category, currency, source): source is "" except for a file whose currency is unknown
TotalKey = tuple[str, str, str, str]


@dataclass
class Tx:
    date: str
    description: str
    amount: Decimal
    currency: str
    category: str
    source: str
    line: str


@dataclass
class StatementRow:
    source: str
    result: Mapping[str, object]


@dataclass
class JobData:
    txs: list[Tx] = field(default_factory=list)
    statements: list[StatementRow] = field(default_factory=list)
    failed: list[tuple[str, str]] = field(default_factory=list)
    unmatched: dict[str, set[str]] = field(default_factory=dict)  # source -> its rules' default categories

    def totals(self) -> dict[TotalKey, tuple[Decimal, int]]:
        sums: dict[TotalKey, list[Decimal | int]] = {}
        for tx in self.txs:
            key = (tx.date[:7], tx.category, tx.currency, "" if tx.currency else tx.source)
            entry = sums.setdefault(key, [Decimal(0), 0])
            entry[0] += tx.amount
            entry[1] += 1
        return {k: (Decimal(v[0]), int(v[1])) for k, v in sums.items()}

    def warnings(self) -> list[tuple[str, str]]:
        found = []
        for row in self.statements:
            warnings = row.result.get("warnings")
            if isinstance(warnings, list):
                found += [(row.source, str(w)) for w in warnings]
        return found

    def uncategorised(self) -> list[Tx]:
        return [tx for tx in self.txs if tx.category in self.unmatched.get(tx.source, set())]


def block_label(currency: str, source: str) -> str:
    """How a currency block is named: the code, or '? <file>' for a file of unknown currency."""
    return currency or f"? {source}"


def _read_job(job: JobContext) -> JobData:
    data = JobData()
    for rel, status, result, error in job.results():
        if status != "done" or not result:
            if status == "failed":
                data.failed.append((rel, str(error or "")))
            continue
        data.statements.append(StatementRow(rel, result))
        unmatched = result.get("unmatched_categories") or []
        data.unmatched[rel] = {str(c) for c in unmatched}
        if result.get("output"):
            data.txs += _read_transactions(Path(job.output_dir), rel, str(result["output"]))
    data.txs.sort(key=lambda t: (t.date, t.source, int(t.line) if t.line.isdigit() else 0))
    return data


def _read_transactions(out_dir: Path, rel: str, output: str) -> Iterator[Tx]:
    target = (out_dir / output).resolve()
    if out_dir.resolve() not in target.parents:
        log.warning("statements report: %s points outside the output folder; skipped", rel)
        return
    try:
        with open(target, newline="", encoding="utf-8") as fh:
            for row in csv.DictReader(fh):
                try:
                    amount = Decimal(row["amount"])
                except (InvalidOperation, KeyError, TypeError):
                    continue
                yield Tx(row["date"], row["description"], amount, row["currency"], row["category"],
                         row.get("source") or rel, row.get("line") or "")
    except OSError as exc:
        log.warning("statements report: cannot read %s: %s", target, exc)


def write_report(job: JobContext) -> tuple[Path, Path]:
    """Finalize hook: ``statements_report.csv`` and ``.xlsx`` (returned: the job's reports) and
    ``statements_summary.json`` beside them (the TUI's cache, not a report)."""
    out_dir = Path(job.output_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    data = _read_job(job)
    csv_path = _write_csv(out_dir / REPORT_CSV, data)
    xlsx_path = _write_xlsx(out_dir / REPORT_XLSX, data)
    _write_json(out_dir / SUMMARY_JSON, data)
    log.info("job %s: statements report with %d transactions written to %s", job.job_id, len(data.txs), out_dir)
    return csv_path, xlsx_path


def _replace(part: Path, target: Path) -> Path:
    os.replace(part, target)
    return target


def statement_text(result: Mapping[str, object]) -> str:
    """One line on a statement's balance check, for the report."""
    check = result.get("balance_check", "n/a")
    if check == "ok":
        return (f"balance ok: opening {result.get('opening_balance')} + transactions = closing "
                f"{result.get('closing_balance')}")
    if check == "mismatch":
        return (f"balance mismatch: stated closing {result.get('closing_balance')}, computed "
                f"{result.get('computed_closing_balance')}, difference {result.get('balance_difference')}")
    return "no balances stated: not reconciled"


def _write_csv(target: Path, data: JobData) -> Path:
    part = target.with_name(f".{target.name}.part")
    with open(part, "w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(CSV_COLUMNS)
        for (month, category, currency, source), (amount, count) in sorted(data.totals().items()):
            writer.writerow(["total", month, category, currency, fmt(amount), count, "", "", source, ""])
        for tx in data.txs:
            writer.writerow(["transaction", tx.date[:7], tx.category, tx.currency, fmt(tx.amount), 1,
                             tx.date, tx.description, tx.source, tx.line])
        for row in data.statements:
            r = row.result
            writer.writerow(["statement", "", r.get("balance_check", "n/a"), r.get("currency", ""),
                             r.get("balance_difference", ""), r.get("transactions", ""), r.get("last_date", ""),
                             statement_text(r), row.source, ""])
        for source, warning in data.warnings():
            writer.writerow(["warning", "", "", "", "", "", "", warning, source, ""])
    return _replace(part, target)


# --------------------------------------------------------------------------------------------
# XLSX
# --------------------------------------------------------------------------------------------


def _safe_cell(value: Cell) -> Cell:
    """Text for a spreadsheet cell: no control characters (openpyxl refuses them)."""
    if isinstance(value, str):
        from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE

        return str(ILLEGAL_CHARACTERS_RE.sub("", value))
    return value


def _no_formulas(sheet: Worksheet) -> None:
    """openpyxl stores text starting with "=" as a formula: make every such cell plain text."""
    for row in sheet.iter_rows():
        for c in row:
            if c.data_type == "f":
                c.data_type = "s"


def _sheet(wb: Workbook, title: str, header: list[str], widths: tuple[int, ...]) -> Worksheet:
    from openpyxl.styles import Font

    sheet = wb.create_sheet(title)
    sheet.append(header)
    for c in sheet[1]:
        c.font = Font(bold=True)
    for index, width in enumerate(widths):
        sheet.column_dimensions[chr(ord("A") + index)].width = width
    sheet.freeze_panes = "A2"
    return sheet


MONEY = "#,##0.00;[Red]-#,##0.00"


def _write_summary(wb: Workbook, data: JobData) -> None:
    from openpyxl.styles import Font

    totals = data.totals()
    months = sorted({k[0] for k in totals})
    summary = _sheet(wb, "Summary", ["Category", "Currency", *months, "Total"], (24, 14))
    pivot: dict[tuple[str, str], dict[str, Decimal]] = defaultdict(dict)
    for (month, category, currency, source), (amount, _count) in totals.items():
        pivot[(block_label(currency, source), category)][month] = amount
    for block in sorted({b for b, _ in pivot}):
        column_totals: dict[str, Decimal] = defaultdict(Decimal)
        for (b, category), by_month in sorted(pivot.items()):
            if b != block:
                continue
            row: list[Cell] = [_safe_cell(category), _safe_cell(block)]
            for month in months:
                value = by_month.get(month)
                row.append(float(value) if value is not None else None)
                column_totals[month] += value or Decimal(0)
            summary.append([*row, float(sum(by_month.values(), Decimal(0)))])
        summary.append(["Total", _safe_cell(block), *(float(column_totals[m]) for m in months),
                        float(sum(column_totals.values(), Decimal(0)))])
        for c in summary[summary.max_row]:
            c.font = Font(bold=True)
    for cells in summary.iter_rows(min_row=2, min_col=3):
        for c in cells:
            c.number_format = MONEY
    summary.freeze_panes = "C2"


def _write_transactions(wb: Workbook, data: JobData) -> None:
    sheet = _sheet(wb, "Transactions", ["Date", "Description", "Amount", "Currency", "Category", "Source", "Line"],
                   (12, 48, 14, 9, 22, 40, 7))
    for tx in data.txs:
        sheet.append([date.fromisoformat(tx.date), _safe_cell(tx.description), float(tx.amount), tx.currency,
                      _safe_cell(tx.category), _safe_cell(tx.source), int(tx.line) if tx.line.isdigit() else None])
    for d, _desc, amount in sheet.iter_rows(min_row=2, max_col=3):
        d.number_format = "yyyy-mm-dd"
        amount.number_format = MONEY


# (title, item-result key, kind, width)
STATEMENT_COLUMNS = (
    ("Format", "format", "text", 8), ("Currency", "currency", "text", 9),
    ("Transactions", "transactions", "int", 12), ("First date", "first_date", "date", 11),
    ("Last date", "last_date", "date", 11), ("Debits", "debits", "money", 13), ("Credits", "credits", "money", 13),
    ("Balance check", "balance_check", "text", 13), ("Opening", "opening_balance", "money", 13),
    ("Closing (stated)", "closing_balance", "money", 15),
    ("Closing (computed)", "computed_closing_balance", "money", 17),
    ("Difference", "balance_difference", "money", 12),
)


def _write_statements(wb: Workbook, data: JobData) -> None:
    sheet = _sheet(wb, "Statements", ["File", *(c[0] for c in STATEMENT_COLUMNS)],
                   (40, *(c[3] for c in STATEMENT_COLUMNS)))
    for row in data.statements:
        values = [_typed(row.result.get(key), kind) for _title, key, kind, _width in STATEMENT_COLUMNS]
        sheet.append([_safe_cell(row.source), *values])
        for cell, (_title, _key, kind, _width) in zip(sheet[sheet.max_row][1:], STATEMENT_COLUMNS, strict=True):
            cell.number_format = MONEY if kind == "money" else "yyyy-mm-dd" if kind == "date" else cell.number_format
    warnings = _sheet(wb, "Warnings", ["File", "Warning"], (40, 120))
    for source, warning in data.warnings():
        warnings.append([_safe_cell(source), _safe_cell(warning)])
    for source, error in data.failed:
        warnings.append([_safe_cell(source), _safe_cell(f"failed: {error}")])


def _typed(value: object, kind: str) -> Cell:
    """An item-result value as its spreadsheet type (amounts are exact text in the result)."""
    if value is None or value == "":
        return None
    try:
        if kind == "money":
            return float(Decimal(str(value)))
        if kind == "date":
            return date.fromisoformat(str(value))
        if kind == "int":
            return int(str(value))
    except (InvalidOperation, ValueError):
        pass
    return _safe_cell(str(value))


def _write_xlsx(target: Path, data: JobData) -> Path:
    from openpyxl import Workbook

    wb = Workbook()
    if wb.active is not None:
        wb.remove(wb.active)
    _write_summary(wb, data)
    _write_transactions(wb, data)
    _write_statements(wb, data)
    for sheet in wb.worksheets:
        _no_formulas(sheet)
    part = target.with_name(f".{target.name}.part")
    wb.save(part)
    return _replace(part, target)


# --------------------------------------------------------------------------------------------
# JSON summary for the TUI
# --------------------------------------------------------------------------------------------


def summary(data: JobData) -> dict[str, object]:
    """Month x category totals per currency block, the statements' balance checks, the failures,
    the warnings and the uncategorised transactions (amounts as exact text)."""
    blocks: dict[str, dict[str, dict[str, Decimal]]] = defaultdict(lambda: defaultdict(dict))
    for (month, category, currency, source), (amount, _count) in data.totals().items():
        blocks[block_label(currency, source)][category][month] = amount
    uncategorised = data.uncategorised()
    return {
        "version": 1,
        "blocks": [
            {"currency": label, "months": sorted({m for by in cats.values() for m in by}),
             "categories": {cat: {m: fmt(v) for m, v in sorted(by.items())} for cat, by in sorted(cats.items())}}
            for label, cats in sorted(blocks.items())
        ],
        "statements": [{"source": row.source, **{k: row.result.get(k) for k in _STATEMENT_KEYS}}
                       for row in data.statements],
        "failed": [{"source": s, "error": e} for s, e in data.failed],
        "warnings": [{"source": s, "warning": w} for s, w in data.warnings()],
        "uncategorised_count": len(uncategorised),
        "uncategorised": [{"date": t.date, "description": t.description, "amount": fmt(t.amount),
                           "currency": t.currency, "source": t.source, "line": t.line}
                          for t in uncategorised[:UNCATEGORISED_SHOWN]],
    }  # fmt: skip


_STATEMENT_KEYS = ("format", "currency", "transactions", "first_date", "last_date", "balance_check",
                   "balance_difference", "opening_balance", "closing_balance", "computed_closing_balance")


def _write_json(target: Path, data: JobData) -> None:
    part = target.with_name(f".{target.name}.part")
    part.write_text(json.dumps(summary(data), indent=1, ensure_ascii=False), encoding="utf-8")
    _replace(part, target)
