"""The statements summary widget (job detail): totals per currency with bars, failed
reconciliations, uncategorised transactions; read from the job's output folder off the UI thread."""

from __future__ import annotations

import shutil
import threading
from datetime import date
from decimal import Decimal
from pathlib import Path

import pytest
from textual.app import App, ComposeResult

from batchdesk.config import Settings
from test_ui_support import screen_text, until
from ui.widgets import statements_summary as module
from ui.widgets.statements_summary import StatementsSummary

try:
    from conftest_tasks import SAMPLES, run_job
except ImportError:  # tests/ became a package
    from tests.conftest_tasks import SAMPLES, run_job


class SummaryApp(App[None]):
    CSS = "StatementsSummary { max-height: 100%; }"  # the whole summary on one test screen

    def compose(self) -> ComposeResult:
        yield StatementsSummary(id="statements-summary")


def statements_job(tmp_path: Path) -> Path:
    """A real statements job over the samples, one PDF that does not add up, one unknown merchant."""
    pytest.importorskip("reportlab")
    from test_statements_pdf import gen

    src = tmp_path / "src"
    shutil.copytree(SAMPLES / "statements", src)
    txs = gen.transactions("GBP", date(2024, 3, 1), 6, seed=3)
    bad = gen.make_statement(gen.Layout("bad", running_balance=False), txs, Decimal("100.00"), Decimal("2.50"))
    (src / "bad.pdf").write_bytes(bad)
    (src / "odd.csv").write_text("Date,Description,Amount (GBP)\n01/03/2024,ZORBLAX 42,-3.00\n", encoding="utf-8")
    out = tmp_path / "out"
    rows = run_job("statements", src, out)
    assert all(status == "done" for _rel, status, _r, _e in rows), rows
    return out


async def test_summary_shows_totals_per_currency_failed_reconciliation_and_uncategorised(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = statements_job(tmp_path)
    threads: list[str] = []
    real_loads = module.json.loads

    def recording_loads(text: str) -> object:
        threads.append(threading.current_thread().name)
        return real_loads(text)

    monkeypatch.setattr(module.json, "loads", recording_loads)
    app = SummaryApp()
    async with app.run_test(size=(160, 70)) as pilot:
        widget = app.query_one(StatementsSummary)
        assert not widget.display  # nothing to show until a statements job is followed
        widget.follow("statements", str(out), "done")
        await until(pilot, lambda: widget.loads >= 1, message="the summary to load")
        await pilot.pause()
        assert widget.display
        text = screen_text(app)
        for expected in ("Statements", "EUR", "GBP", "USD", "Groceries", "2024-03", "Total", "█",
                         "Reconciliation failed for 1 of", "bad.pdf: stated closing", "difference 2.50",
                         "Uncategorised: 1 transaction(s)", "ZORBLAX 42", "odd.csv"):
            assert expected in text, expected
        assert threads and threading.main_thread().name not in threads  # read in a worker thread
        widget.follow("statements", str(out), "done")  # same job, same status: not read again
        await pilot.pause()
        assert widget.loads == 1
        widget.follow("checksum", str(out), "done")
        assert not widget.display


async def test_summary_appears_when_the_report_is_written(tmp_path: Path) -> None:
    app = SummaryApp()
    async with app.run_test(size=(120, 40)) as pilot:
        widget = app.query_one(StatementsSummary)
        widget.follow("statements", str(tmp_path), "running")
        await until(pilot, lambda: widget.loads >= 1, message="the first read")
        assert not widget.display  # no summary yet
        out = statements_job(tmp_path)
        widget.follow("statements", str(out), "done")
        await until(pilot, lambda: widget.loads >= 2, message="the second read")
        assert widget.display and widget.summary is not None
        (out / "statements_summary.json").write_text("{broken", encoding="utf-8")
        widget.follow("statements", str(out), "failed")
        await until(pilot, lambda: widget.loads >= 3, message="the third read")
        await pilot.pause()
        assert "cannot read statements_summary.json" in screen_text(app)


async def test_job_detail_screen_shows_the_summary_of_a_statements_job(settings: Settings, tmp_path: Path) -> None:
    """The hook: the detail screen follows its job; job 4 of the seeded store is a statements job."""
    from batchdesk.desk.session import Session
    from data.models import Job
    from data.store import close_store
    from test_ui_detail import make_app, open_detail
    from test_ui_support import FIXED_NOW, SIZE, seed_store

    out = statements_job(tmp_path)
    session = Session(settings)
    seed_store(FIXED_NOW)
    Job.update(output_dir=str(out)).where(Job.id == 4).execute()
    try:
        app = make_app(settings, session)
        async with app.run_test(size=(SIZE[0], 70)) as pilot:
            screen = await open_detail(app, pilot, 4)
            widget = screen.query_one(StatementsSummary)
            await until(pilot, lambda: widget.loads >= 1, message="the statements summary")
            await pilot.pause()
            assert widget.display and "Reconciliation failed for 1 of" in screen_text(app)
            await pilot.press("escape")
            screen = await open_detail(app, pilot, 1)  # a checksum job: no summary
            assert not screen.query_one(StatementsSummary).display
    finally:
        session.close()
        close_store()
