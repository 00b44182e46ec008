"""statements on PDF statements made here with ReportLab, in many bank layouts.

Every expected figure (count, debits, credits, first/last date, each transaction) is computed
with Decimal from the rows the generator drew, never from the parser.
"""

from __future__ import annotations

import importlib.util
import sys
import time
from dataclasses import replace
from datetime import date
from decimal import Decimal
from pathlib import Path
from types import ModuleType

import pytest

from conftest import scaled
from workers.pdf import PdfError, PdfPasswordError, open_pdf
from workers.registry import ItemError

try:
    from conftest_tasks import ROOT, SAMPLES, run_task
except ImportError:  # tests/ became a package
    from tests.conftest_tasks import ROOT, SAMPLES, run_task

pytest.importorskip("reportlab")


def _generator() -> ModuleType:
    name = "batchdesk_make_statement_pdfs"
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, ROOT / "scripts" / "make_statement_pdfs.py")
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return sys.modules[name]


gen = _generator()


def expected(txs: list, opening: Decimal) -> dict[str, object]:
    """The item-result figures a statement of these rows must give, computed here."""
    return {
        "transactions": len(txs),
        "debits": str(sum((-t.amount for t in txs if t.amount < 0), Decimal("0.00"))),
        "credits": str(sum((t.amount for t in txs if t.amount > 0), Decimal("0.00"))),
        "first_date": min(t.when for t in txs).isoformat(),
        "last_date": max(t.when for t in txs).isoformat(),
        "closing": str(opening + sum((t.amount for t in txs), Decimal(0))),
    }


def run_pdf(tmp_path: Path, name: str, data: bytes, **opts: object) -> tuple[dict, list[dict]]:
    import csv

    src = tmp_path / "src"
    src.mkdir(exist_ok=True)
    (src / name).write_bytes(data)
    out = tmp_path / "out"
    result = run_task("statements", src / name, src, out, **opts)
    with open(out / result["output"], newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    return result, rows


def check_exact(result: dict, rows: list[dict], txs: list, opening: Decimal) -> None:
    want = expected(txs, opening)
    got = {k: result[k] for k in ("transactions", "debits", "credits", "first_date", "last_date")}
    assert got == {k: want[k] for k in got}
    assert [(r["date"], r["description"], r["amount"]) for r in rows] == [
        (t.when.isoformat(), t.description, str(t.amount)) for t in txs
    ]


LAYOUTS = {
    # ruled, debit/credit columns, running balance, date once per day, "01 Mar" without a year,
    # wrapped descriptions, two pages with the header repeated
    "uk-ruled": gen.UK,
    # decimal commas, trailing minus, "01.03." without a year, Saldo column, German words
    "de-trailing-minus": gen.DE,
    # signed amounts, month-first "03/01" without a year, no running balance, summary lines
    "us-signed": gen.US,
    # one amount column with DR / CR, full dates, unruled, three pages
    "crdr": gen.Layout("crdr", amounts="crdr", date_format="%d/%m/%Y", rows_per_page=8, wrap=False,
                       headers={"date": "Date", "description": "Details", "amount": "Amount", "balance": "Balance"}),
    # credit-card style: only credits say CR
    "cr-only": gen.Layout("cronly", amounts="cr_only", date_format="%d %b %Y", running_balance=False,
                          headers={"date": "Transaction date", "description": "Description", "amount": "Amount (£)"},
                          opening_text="Previous balance", closing_text="New balance", symbol="£"),
    # German: booking date and value date ("Valuta") columns, Soll/Haben-free signed amounts
    "de-valuta": replace(gen.DE, name="valuta", value_date=True,
                         headers={**gen.DE.headers, "date": "Buchung", "date2": "Valuta"}),
    # withdrawals / deposits, full US dates, running balance only (no opening/closing lines)
    "running-only": gen.Layout("running", currency="USD", date_format="%m/%d/%Y", balance_lines=False,
                               headers={"date": "Posting Date", "description": "Description", "debit": "Withdrawals",
                                        "credit": "Deposits", "balance": "Balance"},
                               preamble=("First Orchard Bank", "Account ending 4821"), period_line=""),
}  # fmt: skip


@pytest.mark.parametrize("name", sorted(LAYOUTS))
def test_pdf_layouts_are_read_exactly(tmp_path: Path, name: str) -> None:
    layout = LAYOUTS[name]
    txs = gen.transactions(layout.currency, date(2024, 3, 1), 26, seed=len(name))
    opening = Decimal("5123.45")
    result, rows = run_pdf(tmp_path, f"{name}.pdf", gen.make_statement(layout, txs, opening))
    check_exact(result, rows, txs, opening)
    assert result["format"] == "pdf" and result["skipped"] == 0, result["skipped_examples"]
    assert result["currency"] == layout.currency
    if layout.balance_lines or layout.running_balance:
        assert result["balance_check"] == "ok", result
        assert result["closing_balance"] == expected(txs, opening)["closing"]
    else:
        assert result["balance_check"] == "n/a"
    assert not [w for w in result["warnings"] if "balance" in w]


def test_statement_that_does_not_add_up_is_a_mismatch_with_the_exact_difference(tmp_path: Path) -> None:
    txs = gen.transactions("GBP", date(2024, 3, 1), 12, seed=3)
    opening = Decimal("100.00")
    data = gen.make_statement(gen.Layout("bad", running_balance=False), txs, opening, closing_error=Decimal("-12.34"))
    result, rows = run_pdf(tmp_path, "bad.pdf", data)
    check_exact(result, rows, txs, opening)
    assert result["balance_check"] == "mismatch"
    assert result["balance_difference"] == "-12.34"
    assert result["computed_closing_balance"] == expected(txs, opening)["closing"]
    assert any(w.startswith("balance mismatch:") and "(difference -12.34)" in w for w in result["warnings"])


def test_running_balance_that_breaks_names_the_line(tmp_path: Path) -> None:
    """A row whose amount disagrees with the printed running balance (a misprint, or a row lost)."""
    txs = gen.transactions("GBP", date(2024, 3, 1), 10, seed=5)
    layout = gen.Layout("gap", balance_lines=False, wrap=False)
    data = gen.make_statement(layout, txs, Decimal("500.00"))
    # the same statement without its 5th row: the balances printed after it no longer follow
    shown = txs[:4] + txs[5:]
    pdf_without = _drop_row(layout, txs, 4, Decimal("500.00"))
    result, rows = run_pdf(tmp_path, "gap.pdf", pdf_without)
    assert result["transactions"] == len(shown) and result["balance_check"] == "mismatch"
    assert Decimal(result["balance_difference"]) == txs[4].amount
    assert result["balance_break_line"] == int(rows[4]["line"])
    result, _rows = run_pdf(tmp_path, "whole.pdf", data)
    assert result["balance_check"] == "ok"


def _drop_row(layout: object, txs: list, index: int, opening: Decimal) -> bytes:
    """A statement whose running balance includes row ``index`` but which does not print it."""
    from unittest import mock

    original = gen._row
    calls = {"n": 0}

    def skipping(pen: object, cells: dict, extra: list) -> None:
        calls["n"] += 1
        if calls["n"] != index + 1:
            original(pen, cells, extra)

    with mock.patch.object(gen, "_row", skipping):
        return gen.make_statement(layout, txs, opening)


def test_dates_without_a_year_across_new_year_take_it_from_the_period(tmp_path: Path) -> None:
    txs = gen.transactions("EUR", date(2023, 12, 20), 14, seed=7)
    assert txs[0].when.year == 2023 and txs[-1].when.year == 2024
    result, rows = run_pdf(tmp_path, "jahreswechsel.pdf", gen.make_statement(gen.DE, txs, Decimal("10.00")))
    check_exact(result, rows, txs, Decimal("10.00"))


def test_scanned_statement_fails_with_no_text_layer(tmp_path: Path) -> None:
    txs = gen.transactions("GBP", date(2024, 3, 1), 3, seed=1)
    data = gen.make_statement(gen.UK, txs, Decimal(0), image_only=True)
    with pytest.raises(ItemError, match=r"^no text layer \(a scanned or image-only PDF\)"):
        run_pdf(tmp_path, "scan.pdf", data)


def test_pdf_that_is_not_a_statement_fails_with_the_reason(tmp_path: Path) -> None:
    invoice = (SAMPLES / "documents" / "invoice-2024-0042.pdf").read_bytes()
    with pytest.raises(ItemError, match="no transaction table found in the PDF"):
        run_pdf(tmp_path, "invoice.pdf", invoice)
    with pytest.raises(ItemError, match=r"cannot open the PDF"):
        run_pdf(tmp_path, "broken.pdf", b"%PDF-1.4\n" + b"garbage " * 200)


def _encrypted(user_password: str) -> bytes:
    import io

    from reportlab.lib.pdfencrypt import StandardEncryption
    from reportlab.pdfgen import canvas

    buf = io.BytesIO()
    c = canvas.Canvas(buf, encrypt=StandardEncryption(user_password, ownerPassword="owner-secret"), invariant=1)
    c.drawString(72, 720, "Date Description Amount")
    c.drawString(72, 700, "01/03/2024 TESCO -12.50")
    c.save()
    return buf.getvalue()


def test_pdf_with_an_empty_password_opens_and_a_locked_one_fails_its_item(tmp_path: Path) -> None:
    (tmp_path / "open.pdf").write_bytes(_encrypted(""))
    with open_pdf(tmp_path / "open.pdf") as doc:  # an empty user password opens
        assert doc.page_count == 1 and "TESCO" in doc.page(0).text()
    (tmp_path / "locked.pdf").write_bytes(_encrypted("s3cret"))
    with pytest.raises(PdfPasswordError, match="the PDF is password-protected"):
        open_pdf(tmp_path / "locked.pdf")
    with pytest.raises(ItemError, match=r"^the PDF is password-protected"):
        run_pdf(tmp_path, "locked.pdf", _encrypted("s3cret"))


def test_pdf_module_words_metadata_and_text_layer(tmp_path: Path) -> None:
    txs = gen.transactions("GBP", date(2024, 3, 1), 30, seed=2)
    path = tmp_path / "s.pdf"
    path.write_bytes(gen.make_statement(gen.UK, txs, Decimal(0)))
    with open_pdf(path) as doc:
        assert doc.page_count == 3 and doc.has_text_layer()
        meta = doc.metadata
        assert meta["title"] == "Statement uk" and meta["author"] == "batchdesk test bank"
        assert meta["created"] == "2000-01-01T00:00:00+00:00"  # ReportLab's invariant mode
        words = doc.page(0).words()
        header = [w for w in words if w.text in ("Paid", "out", "Balance")]
        assert [w.text for w in header][:4] == ["Paid", "out", "Paid", "Balance"]  # the header line
        paid = header[0]
        assert paid.x0 < paid.x1 and paid.y0 < paid.y1 and 0 < paid.x0 < 595 and 0 < paid.y0 < 842
        assert "Balance brought forward" in doc.page(0).text()
    scan = tmp_path / "scan.pdf"
    scan.write_bytes(gen.make_statement(gen.UK, txs, Decimal(0), image_only=True))
    with open_pdf(scan) as doc:
        assert not doc.has_text_layer() and doc.page(0).image_count() == 1
    (tmp_path / "not.pdf").write_bytes(b"hello")
    with pytest.raises(PdfError, match="cannot open the PDF"):
        open_pdf(tmp_path / "not.pdf")


def test_a_long_pdf_statement_is_read_in_under_a_fifth_of_a_second_a_page(tmp_path: Path) -> None:
    """Reading is fast: well under 0.2 s per page on a loaded 2-core machine (measured, printed)."""
    txs = gen.transactions("GBP", date(2024, 1, 1), 300, seed=9)
    layout = replace(gen.UK, rows_per_page=30)
    data = gen.make_statement(layout, txs, Decimal("1000.00"))
    with open_pdf(_write(tmp_path / "long.pdf", data)) as doc:
        pages = doc.page_count
    started = time.perf_counter()
    result, _rows = run_pdf(tmp_path, "long.pdf", data)
    per_page = (time.perf_counter() - started) / pages
    print(f"\n{pages} pages, {result['transactions']} transactions: {per_page * 1000:.1f} ms per page")
    assert result["transactions"] == 300 and result["balance_check"] == "ok"
    assert per_page < scaled(0.2)


def _write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


def test_bundled_sample_pdfs_are_what_the_script_makes_and_read_exactly(tmp_path: Path) -> None:
    for name, (data, txs, opening) in gen.sample_statements().items():
        sample = SAMPLES / "statements" / name
        assert sample.read_bytes() == data, f"{name} is stale: run python scripts/make_statement_pdfs.py"
        result, rows = run_pdf(tmp_path, name, data)
        check_exact(result, rows, txs, opening)
        assert result["balance_check"] == "ok", (name, result)
        assert result["warnings"] == [], (name, result["warnings"])


def test_report_lists_reconciliation_per_statement_and_the_warnings(tmp_path: Path) -> None:
    import csv

    from openpyxl import load_workbook

    try:
        from conftest_tasks import run_job
    except ImportError:
        from tests.conftest_tasks import run_job
    src, out = tmp_path / "src", tmp_path / "out"
    src.mkdir()
    txs = gen.transactions("GBP", date(2024, 3, 1), 8, seed=4)
    (src / "bad.pdf").write_bytes(gen.make_statement(gen.Layout("bad", running_balance=False), txs, Decimal("50.00"),
                                                     closing_error=Decimal("0.01")))
    (src / "good.pdf").write_bytes(gen.make_statement(gen.UK, txs, Decimal("50.00")))
    run_job("statements", src, out)
    with open(out / "statements_report.csv", newline="", encoding="utf-8") as fh:
        report = list(csv.DictReader(fh))
    statements = {r["source"]: r for r in report if r["kind"] == "statement"}
    assert statements["bad.pdf"]["category"] == "mismatch" and statements["bad.pdf"]["amount"] == "0.01"
    assert statements["bad.pdf"]["description"].startswith("balance mismatch: stated closing")
    assert statements["good.pdf"]["category"] == "ok" and statements["good.pdf"]["amount"] == ""
    warnings = [r for r in report if r["kind"] == "warning"]
    assert [w["source"] for w in warnings] == ["bad.pdf"] and "difference 0.01" in warnings[0]["description"]
    wb = load_workbook(out / "statements_report.xlsx")
    rows = [list(r) for r in wb["Statements"].iter_rows(values_only=True)]
    assert rows[0][0] == "File" and "Balance check" in rows[0] and "Difference" in rows[0]
    bad = next(r for r in rows if r[0] == "bad.pdf")
    assert bad[rows[0].index("Balance check")] == "mismatch" and bad[rows[0].index("Difference")] == 0.01
    assert bad[rows[0].index("Transactions")] == 8
    assert [r[0] for r in wb["Warnings"].iter_rows(min_row=2, values_only=True)] == ["bad.pdf"]
