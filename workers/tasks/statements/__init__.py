"""statements: bank statements (CSV exports and text PDFs) -> categorised transactions, a
reconciliation of stated balances, and a monthly report per currency.

The parts, each in its own module:

* :mod:`.dialect` - which column is which (header words in six languages);
* :mod:`.dates`, :mod:`.amounts`, :mod:`.currency` - a file's date format, decimal mark and
  currency, decided from the whole file;
* :mod:`.csv_reader` - CSV exports; :mod:`.pdf_reader` - PDF statements (on :mod:`workers.pdf`);
* :mod:`.rules` - categorising with layered rules files (bundled, user, ``--opt rules=FILE``);
* :mod:`.reconcile` - opening + transactions = closing, from balance lines or a running balance;
* :mod:`.report` - the job's ``statements_report.csv/.xlsx`` and ``statements_summary.json``;
* :mod:`.task` - the task itself (registered as ``statements`` when this package is imported).

Each item writes ``<name>.transactions.csv`` (date, description, amount, currency, category,
source, line) and returns counts, date range, exact debits and credits, per-currency and
per-category totals, the currency and where it came from, ``balance_check`` (``ok``,
``mismatch``, ``n/a``) with the balances, the dialect found, and ``warnings``.
"""

from workers.tasks.statements.amounts import decide_decimal, parse_amount
from workers.tasks.statements.csv_reader import parse_statement
from workers.tasks.statements.model import Statement, StatementError, Transaction
from workers.tasks.statements.report import (
    REPORT_CSV,
    REPORT_XLSX,
    SUMMARY_JSON,
    write_report,
)
from workers.tasks.statements.rules import default_rules_path, load_rules, rules_for
from workers.tasks.statements.task import TRANSACTION_COLUMNS, statements

__all__ = [
    "REPORT_CSV",
    "REPORT_XLSX",
    "SUMMARY_JSON",
    "TRANSACTION_COLUMNS",
    "Statement",
    "StatementError",
    "Transaction",
    "decide_decimal",
    "default_rules_path",
    "load_rules",
    "parse_amount",
    "parse_statement",
    "rules_for",
    "statements",
    "write_report",
]
