"""A statements job's summary on its detail screen: month x category totals per currency with bars,
the statements whose balances do not reconcile, and the uncategorised transactions to fix.

It reads ``statements_summary.json``, which the ``statements`` task's end-of-job step writes into
the job's output folder (workers/tasks/statements/report.py), in a thread worker: never on the UI
thread. The screen calls :meth:`StatementsSummary.follow` on every refresh; the file is read again
only when the job's status changes (the report is written as the job finishes), and the widget
stays hidden for other tasks and until there is a summary to show.
"""

from __future__ import annotations

import json
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.containers import VerticalScroll
from textual.message import Message
from textual.widgets import Static

SUMMARY_FILE = "statements_summary.json"  # written by the statements task's report step
TASK = "statements"
BAR_WIDTH = 16
UNCATEGORISED_SHOWN = 15


class SummaryLoaded(Message):
    def __init__(self, summary: dict[str, Any] | None, error: str | None) -> None:
        super().__init__()
        self.summary = summary
        self.error = error


class StatementsSummary(VerticalScroll):
    DEFAULT_CSS = """
    StatementsSummary {
        display: none;
        height: auto;
        max-height: 50%;
        border: round $secondary;
        border-title-style: bold;
        padding: 0 1;
    }
    StatementsSummary > Static { height: auto; }
    """

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self._key: tuple[str, str] | None = None
        self.loads = 0  # completed reads (tests wait on it)
        self.summary: dict[str, Any] | None = None

    def compose(self) -> ComposeResult:
        yield Static(id="statements-reconciliation")
        yield Static(id="statements-uncategorised")
        yield Static(id="statements-totals")

    def on_mount(self) -> None:
        self.border_title = "Statements"

    def follow(self, task: str, output_dir: str, status: str) -> None:
        """Show the summary of this job if it is a statements job; re-read when its status changes."""
        if task != TASK:
            self.display = False
            return
        key = (output_dir, status)
        if key != self._key:
            self._key = key
            self._read(Path(output_dir) / SUMMARY_FILE)

    @work(thread=True, exclusive=True, group="statements-summary", exit_on_error=False)
    def _read(self, path: Path) -> None:
        try:
            summary = json.loads(path.read_text(encoding="utf-8"))
            self.post_message(SummaryLoaded(summary if isinstance(summary, dict) else None, None))
        except FileNotFoundError:
            self.post_message(SummaryLoaded(None, None))  # not written yet: the job is still running
        except (OSError, ValueError) as exc:
            self.post_message(SummaryLoaded(None, f"cannot read {path.name}: {exc}"))

    def on_summary_loaded(self, message: SummaryLoaded) -> None:
        self.loads += 1
        self.summary = message.summary
        if message.summary is None:
            self.display = message.error is not None
            self.query_one("#statements-reconciliation", Static).update(message.error or "")
            return
        self.display = True
        self.query_one("#statements-totals", Static).update(totals_view(message.summary))
        self.query_one("#statements-reconciliation", Static).update(reconciliation_view(message.summary))
        self.query_one("#statements-uncategorised", Static).update(uncategorised_view(message.summary))


def _amount(text: object) -> Decimal:
    try:
        return Decimal(str(text))
    except InvalidOperation:
        return Decimal(0)


def _money(value: Decimal) -> str:
    return f"{value:,.2f}"


def bar(value: Decimal, largest: Decimal, width: int = BAR_WIDTH) -> Text:
    """A bar as long as |value| is against the largest in its block: red going out, green coming in."""
    if largest <= 0 or value == 0:
        return Text("")
    cells = max(1, round(float(abs(value) / largest) * width))
    return Text("█" * cells, style="red" if value < 0 else "green")


def totals_view(summary: dict[str, Any]) -> RenderableType:
    """One table per currency: categories down, months across, the total and a bar."""
    tables: list[RenderableType] = []
    for block in summary.get("blocks", []):
        months = list(block.get("months", []))
        categories: dict[str, dict[str, str]] = block.get("categories", {})
        totals = {cat: sum((_amount(v) for v in by.values()), Decimal(0)) for cat, by in categories.items()}
        largest = max((abs(t) for t in totals.values()), default=Decimal(0))
        table = Table(title=f"{block.get('currency')}", title_justify="left", expand=False, box=None, padding=(0, 1))
        table.add_column("Category")
        for month in months:
            table.add_column(month, justify="right")
        table.add_column("Total", justify="right")
        table.add_column("", min_width=BAR_WIDTH)
        for category in sorted(categories, key=lambda c: totals[c]):
            by = categories[category]
            cells = [_money(_amount(by[m])) if m in by else "" for m in months]
            table.add_row(category, *cells, _money(totals[category]), bar(totals[category], largest))
        tables.append(table)
    if not tables:
        return Text("no transactions")
    return Group(*tables)


def reconciliation_view(summary: dict[str, Any]) -> RenderableType:
    statements = summary.get("statements", [])
    failed = [s for s in statements if s.get("balance_check") == "mismatch"]
    checked = sum(1 for s in statements if s.get("balance_check") in ("ok", "mismatch"))
    lines = Text()
    if not failed:
        lines.append(f"Reconciliation: all {checked} statement(s) with balances add up", style="green")
        unchecked = len(statements) - checked
        if unchecked:
            lines.append(f"; {unchecked} state no balances")
        return lines
    lines.append(f"Reconciliation failed for {len(failed)} of {checked} statement(s):", style="bold red")
    for s in failed:
        lines.append(f"\n  {s.get('source')}: stated closing {s.get('closing_balance')}, computed "
                     f"{s.get('computed_closing_balance')}, difference {s.get('balance_difference')}")
    return lines


def uncategorised_view(summary: dict[str, Any]) -> RenderableType:
    count = int(summary.get("uncategorised_count") or 0)
    if not count:
        return Text("Uncategorised: none", style="green")
    rows = summary.get("uncategorised", [])[:UNCATEGORISED_SHOWN]
    table = Table(title=f"Uncategorised: {count} transaction(s) to fix in your rules.toml", title_justify="left",
                  box=None, padding=(0, 1))
    for column, justify in (("Date", "left"), ("Amount", "right"), ("", "left"), ("Description", "left"),
                            ("File", "left")):
        table.add_column(column, justify=justify)  # type: ignore[arg-type]
    for row in rows:
        table.add_row(row.get("date", ""), _money(_amount(row.get("amount"))), row.get("currency", ""),
                      row.get("description", ""), row.get("source", ""))
    if count > len(rows):
        table.add_row("", "", "", f"… and {count - len(rows)} more (statements_report.xlsx)", "")
    return table
