"""The ``statements`` task: one statement file (CSV export or PDF) -> categorised transactions."""

from __future__ import annotations

import csv
import io
import re
from collections import defaultdict
from collections.abc import Mapping
from decimal import Decimal
from pathlib import Path

from workers.registry import CheckContext, ItemError, Option, TaskContext, task
from workers.tasks._common import (
    ENCODING_ALLOWED,
    check_encoding,
    decode_text,
    output_file,
    read_limited,
    relative_to_output,
    sniff_type,
    write_atomic,
)
from workers.tasks.statements.amounts import fmt
from workers.tasks.statements.csv_reader import parse_statement
from workers.tasks.statements.model import Statement, StatementError
from workers.tasks.statements.reconcile import reconcile
from workers.tasks.statements.report import write_report
from workers.tasks.statements.rules import Rules, rules_for

TRANSACTION_COLUMNS = ["date", "description", "amount", "currency", "category", "source", "line"]
MAX_BYTES = 64 << 20


def _check_rules(option: str, ctx: CheckContext) -> None:
    """The rules files must exist and parse, as the task reads them (the option's file: current
    folder, then the job's folder; the user's rules file in the config folder); a StatementError
    is a ValueError, so its message is the reason shown."""
    rules_for(option, ctx.source_root)


def _check_currency(code: str, ctx: CheckContext) -> None:
    if code and not re.fullmatch(r"[A-Za-z]{3}", code):
        raise ValueError("use a 3-letter currency code such as EUR, or leave it empty")


OPTIONS = (
    Option("rules", str, "", "categorisation rules (TOML) layered over your rules.toml and the bundled rules",
           check=_check_rules, allowed="empty (bundled + user rules) or a TOML rules file"),
    Option("currency", str, "", "currency code for files that name none (e.g. EUR)",
           check=_check_currency, allowed="empty or a 3-letter code such as EUR"),
    Option("date_order", str, "auto", "how to read ambiguous dates", choices=("auto", "ymd", "dmy", "mdy")),
    Option("decimal", str, "auto", "decimal mark of amounts", choices=("auto", ".", ",")),
    Option("delimiter", str, "auto", "field delimiter", choices=("auto", ",", ";", "tab", "|")),
    Option("encoding", str, "auto", "file encoding; auto = BOM, then utf-8, cp1252, latin-1",
           check=check_encoding, allowed=ENCODING_ALLOWED),
)  # fmt: skip

_NOT_STATEMENTS = {"zip", "docx", "xlsx", "pptx", "png", "jpeg", "gif", "gzip", "ole", "binary", "sqlite", "tiff"}


def read_statement(path: Path, options: Mapping[str, object]) -> tuple[Statement, str | None]:
    """Read a CSV export or a PDF statement; returns the statement and the text encoding (CSV)."""
    data = read_limited(path, MAX_BYTES)
    if not data.strip():
        raise ItemError("empty file")
    kind = sniff_type(data[:4096], len(data) <= 4096)
    if kind == "pdf":
        from workers.tasks.statements.pdf_reader import parse_pdf_statement

        return parse_pdf_statement(path, options), None
    if kind in _NOT_STATEMENTS:
        raise ItemError(f"not a statement (looks like {kind}): statements reads CSV exports and PDF statements")
    text, encoding = decode_text(data, str(options.get("encoding") or "auto"))
    return parse_statement(text, options), encoding


@task(
    "statements",
    description="bank statements (CSV exports, PDF) -> categorised transactions, reconciliation, monthly report",
    options=OPTIONS,
    finalize=write_report,
    cost_per_item=0.005,
    cost_per_byte=2e-7,
)
def statements(path: Path, ctx: TaskContext) -> dict[str, object]:
    """Read, reconcile and categorise one statement; write <name>.transactions.csv."""
    options = dict(ctx.options)
    path = Path(path)
    try:
        rules = rules_for(str(options.get("rules") or ""), ctx.source_root)
        statement, encoding = read_statement(path, options)
    except StatementError as exc:
        raise ItemError(str(exc)) from None
    for tx in statement.transactions:
        tx.category = rules.categorise(tx.description, tx.amount)
    target = output_file(ctx, path, ".transactions.csv")
    write_atomic(target, _transactions_csv(statement, ctx.rel_path))
    outcome = reconcile(statement.transactions, statement.opening_balance, statement.closing_balance)
    warning = outcome.warning()
    warnings = statement.warnings + ([warning] if warning else [])
    return {
        **_figures(statement),
        "skipped": len(statement.skipped),
        "skipped_examples": statement.skipped[:3],
        "encoding": encoding,
        "currency": statement.currency,
        "currency_source": statement.currency_source,
        **outcome.result(),
        "rules": rules.path,
        "rules_layers": list(rules.layers),
        "unmatched_categories": _unmatched(rules),
        **statement.dialect,
        "warnings": warnings,
        "output": relative_to_output(ctx.output_dir, target),
    }


def _unmatched(rules: Rules) -> list[str]:
    """The categories a transaction gets when no rule matched it (the report lists those)."""
    return [c for c in (rules.default, rules.default_income) if c]


def _transactions_csv(statement: Statement, source: str) -> str:
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(TRANSACTION_COLUMNS)
    for tx in statement.transactions:
        writer.writerow([tx.date.isoformat(), tx.description, fmt(tx.amount), tx.currency, tx.category, source,
                         tx.line])
    return buf.getvalue()


def _figures(statement: Statement) -> dict[str, object]:
    """Counts, date range and totals: per currency, and exact debits/credits for a one-currency file."""
    txs = statement.transactions
    totals: dict[str, dict[str, Decimal]] = defaultdict(lambda: {"in": Decimal(0), "out": Decimal(0)})
    by_category: dict[str, Decimal] = defaultdict(Decimal)
    for tx in txs:
        totals[tx.currency]["in" if tx.amount > 0 else "out"] += tx.amount
        by_category[tx.category] += tx.amount
    dates = [tx.date for tx in txs]
    single = len(totals) == 1
    return {
        "transactions": len(txs),
        "first_date": min(dates).isoformat(),
        "last_date": max(dates).isoformat(),
        "debits": _money(Decimal(0) - sum((t.amount for t in txs if t.amount < 0), Decimal(0))) if single else None,
        "credits": _money(sum((t.amount for t in txs if t.amount > 0), Decimal(0))) if single else None,
        "totals": {c: {k: float(v) for k, v in t.items()} for c, t in sorted(totals.items())},
        "categories": {k: float(v) for k, v in sorted(by_category.items())},
    }


def _money(value: Decimal) -> str:
    return fmt(value) if value else "0.00"
