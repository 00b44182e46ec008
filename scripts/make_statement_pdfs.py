"""Generate PDF bank statements in several bank layouts (ReportLab), for the tests and the samples.

    python scripts/make_statement_pdfs.py            # (re)write the sample PDFs in data/samples/statements/
    python scripts/make_statement_pdfs.py --out DIR  # write them somewhere else

Needs ReportLab (in the ``test`` extra: ``pip install -e '.[test]'``). The PDFs are the same
bytes every run (ReportLab's invariant mode, fixed data). Every transaction, balance and total in
them is made up; :func:`make_statement` returns the rows it drew, so a test computes its expected
figures from them (not from the parser).
"""

from __future__ import annotations

import argparse
import io
import random
import sys
from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SAMPLES = ROOT / "data" / "samples" / "statements"

MERCHANTS = {
    "GBP": [("TESCO STORES 3021", -1), ("SAINSBURYS S/MKTS", -1), ("PRET A MANGER", -1), ("TFL TRAVEL CH", -1),
            ("OCTOPUS ENERGY", -1), ("BOOTS 1132", -1), ("NETFLIX.COM", -1), ("SALARY NORTHWIND ORCHARDS", 1),
            ("AMAZON.CO.UK*AB12C", -1), ("REFUND LUMEN PRINT", 1)],
    "EUR": [("REWE Markt GmbH", -1), ("EDEKA CENTER", -1), ("ARAL STATION 1234", -1), ("DB Vertrieb GmbH", -1),
            ("Telekom Deutschland GmbH", -1), ("Allianz Versicherungs-AG", -1), ("Gehalt Nordwind GmbH", 1),
            ("Lieferando.de", -1), ("dm-drogerie markt", -1), ("Erstattung Finanzamt", 1)],
    "USD": [("WHOLEFDS MKT 10234", -1), ("AMZN Mktp US*2K4RT5YZ1", -1), ("SQ *BLUE BOTTLE COFFEE", -1),
            ("SHELL OIL 57444238", -1), ("TRADER JOE'S #552", -1), ("VERIZON WIRELESS", -1),
            ("PAYROLL ACME ROBOTICS", 1), ("UBER *TRIP HELP.UBER.COM", -1), ("CVS/PHARMACY #01234", -1),
            ("VENMO CASHOUT", 1)],
}  # fmt: skip
LONG_TAILS = ["REFERENCE 88123 INVOICE MARCH", "CARD ENDING 4821 CONTACTLESS", "MANDATE REF DE98ZZZ0999"]


@dataclass(frozen=True)
class Tx:
    when: date
    description: str
    amount: Decimal  # money in > 0, money out < 0


@dataclass
class Layout:
    """How a bank lays out its statement (every knob the reader must cope with)."""

    name: str
    currency: str = "GBP"
    amounts: str = "debit_credit"  # debit_credit, signed, trailing_minus, crdr, cr_only
    date_format: str = "%d %b"  # strftime; without %Y the period line gives the year
    decimal: str = "."
    ruled: bool = False
    running_balance: bool = True
    balance_lines: bool = True  # opening / closing balance lines
    wrap: bool = True  # long descriptions wrap onto the next line
    date_once_per_day: bool = False
    rows_per_page: int = 14
    headers: dict[str, str] = field(default_factory=lambda: {
        "date": "Date", "description": "Description", "debit": "Paid out", "credit": "Paid in",
        "amount": "Amount", "balance": "Balance"})
    period_line: str = "Statement period: {start:%d %B %Y} to {end:%d %B %Y}"
    opening_text: str = "Balance brought forward"
    closing_text: str = "Closing balance"
    preamble: tuple[str, ...] = ("Northwind Bank plc", "Sort code 20-00-00   Account 12345678")
    font_size: float = 9.0
    symbol: str = ""  # printed before the opening and closing balance lines' amounts
    value_date: bool = False  # a second date column (value date) after the booking date


def transactions(currency: str, start: date, count: int, seed: int) -> list[Tx]:
    """``count`` made-up transactions from ``start`` on, several a day, amounts to the cent."""
    rng = random.Random(seed)
    when, out = start, []
    for i in range(count):
        if i and rng.random() < 0.6:
            when += timedelta(days=rng.randint(1, 3))
        name, sign = rng.choice(MERCHANTS[currency])
        cents = rng.randint(150, 9000) if sign < 0 else rng.randint(5000, 400000)
        if rng.random() < 0.1:
            cents = rng.randint(100000, 250000)  # thousands separators
        tail = f" {rng.choice(LONG_TAILS)}" if rng.random() < 0.3 else ""
        out.append(Tx(when, name + tail, Decimal(sign * cents).scaleb(-2)))
    return out


def money(value: Decimal, layout: Layout, style: str | None = None) -> str:
    """An amount as the layout prints it (unsigned magnitude for debit/credit columns)."""
    style = style or layout.amounts
    text = f"{abs(value):,.2f}"
    if layout.decimal == ",":
        text = text.replace(",", "\x00").replace(".", ",").replace("\x00", ".")
    if style == "plain":
        return text
    if style == "signed":
        return ("-" if value < 0 else "") + text
    if style == "trailing_minus":
        return text + ("-" if value < 0 else "")
    if style == "crdr":
        return text + (" DR" if value < 0 else " CR")
    if style == "cr_only":
        return text + (" CR" if value > 0 else "")
    return text


def _wrap(text: str, limit: int) -> list[str]:
    words, lines = text.split(), [""]
    for word in words:
        if lines[-1] and len(lines[-1]) + 1 + len(word) > limit:
            lines.append(word)
        else:
            lines[-1] = f"{lines[-1]} {word}".strip()
    return lines


@dataclass
class _Pen:
    """Where the next line goes, and the page breaks."""

    canvas: object
    layout: Layout
    y: float = 0.0
    rows_on_page: int = 0


def _columns(layout: Layout) -> list[tuple[str, float, str]]:
    """(role, x, alignment) of each column: text columns left-aligned at x, money right-aligned at x."""
    cols = [("date", 40.0, "left"), ("description", 110.0, "left")]
    if layout.value_date:
        cols = [("date", 40.0, "left"), ("date2", 80.0, "left"), ("description", 125.0, "left")]
    if layout.amounts == "debit_credit":
        cols += [("debit", 400.0, "right"), ("credit", 470.0, "right")]
    else:
        cols += [("amount", 440.0, "right")]
    if layout.running_balance:
        cols += [("balance", 550.0, "right")]
    return cols


def _text(pen: _Pen, x: float, text: str, align: str = "left") -> None:
    c = pen.canvas
    (c.drawRightString if align == "right" else c.drawString)(x, pen.y, text)  # type: ignore[attr-defined]


def _header(pen: _Pen, page: int, start: date, end: date, summary: str = "") -> None:
    layout, c = pen.layout, pen.canvas
    pen.y = 800
    for line in (*layout.preamble, summary) if summary else layout.preamble:
        _text(pen, 40, line)
        pen.y -= 14
    _text(pen, 40, layout.period_line.format(start=start, end=end))
    _text(pen, 555, f"Page {page}", "right")
    pen.y -= 28
    for role, x, align in _columns(layout):
        _text(pen, x, layout.headers[role], align)
    if layout.ruled:
        c.line(36, pen.y - 4, 558, pen.y - 4)  # type: ignore[attr-defined]
    pen.y -= 16
    pen.rows_on_page = 0


def _row(pen: _Pen, cells: dict[str, str], extra: list[str]) -> None:
    for role, x, align in _columns(pen.layout):
        if cells.get(role):
            _text(pen, x, cells[role], align)
    x = next(x for role, x, _align in _columns(pen.layout) if role == "description")
    for line in extra:
        pen.y -= pen.layout.font_size + 2
        _text(pen, x, line)
    if pen.layout.ruled:
        pen.canvas.line(36, pen.y - 4, 558, pen.y - 4)  # type: ignore[attr-defined]
    pen.y -= pen.layout.font_size + 5
    pen.rows_on_page += 1


def _cells(tx: Tx, layout: Layout, balance: Decimal, show_date: bool) -> tuple[dict[str, str], list[str]]:
    lines = _wrap(tx.description, 34) if layout.wrap else [tx.description]
    cells = {"date": tx.when.strftime(layout.date_format) if show_date else "", "description": lines[0]}
    if layout.value_date:
        cells["date2"] = (tx.when + timedelta(days=1)).strftime(layout.date_format)
    if layout.amounts == "debit_credit":
        cells["debit" if tx.amount < 0 else "credit"] = money(tx.amount, layout)
    else:
        cells["amount"] = money(tx.amount, layout)
    if layout.running_balance:
        cells["balance"] = money(balance, layout, "signed")
    return cells, lines[1:]


def make_statement(layout: Layout, txs: list[Tx], opening: Decimal, closing_error: Decimal = Decimal(0),
                   image_only: bool = False) -> bytes:
    """The statement as PDF bytes. ``closing_error`` is added to the printed closing balance (a
    statement that does not add up); ``image_only`` draws a picture of text instead of text."""
    from reportlab.pdfgen import canvas as rl_canvas

    buf = io.BytesIO()
    c = rl_canvas.Canvas(buf, pagesize=(595, 842), invariant=1)
    c.setTitle(f"Statement {layout.name}")
    c.setAuthor("batchdesk test bank")
    if image_only:
        _scan(c)
        c.save()
        return buf.getvalue()
    c.setFont("Helvetica", layout.font_size)
    start, end = txs[0].when.replace(day=1), txs[-1].when
    pen, page, balance = _Pen(c, layout), 1, opening
    in_table = layout.balance_lines and layout.running_balance
    summary = f"{layout.opening_text} {layout.symbol}{money(opening, layout, 'signed')}" if layout.balance_lines else ""
    _header(pen, page, start, end, "" if in_table else summary)
    if in_table:
        _row(pen, {"description": layout.opening_text, "balance": money(opening, layout, "signed")}, [])
    previous: date | None = None
    for tx in txs:
        if pen.rows_on_page >= layout.rows_per_page:
            c.showPage()
            c.setFont("Helvetica", layout.font_size)
            page += 1
            _header(pen, page, start, end)
            previous = None
        balance += tx.amount
        show = not (layout.date_once_per_day and tx.when == previous)
        cells, extra = _cells(tx, layout, balance, show)
        _row(pen, cells, extra)
        previous = tx.when
    if layout.balance_lines:
        pen.y -= 6
        _text(pen, 110, layout.closing_text)
        _text(pen, 550, layout.symbol + money(balance + closing_error, layout, "signed"), "right")
    c.save()
    return buf.getvalue()


def _scan(c: object) -> None:
    """A page that is only an image (a scan without OCR)."""
    from PIL import Image, ImageDraw
    from reportlab.lib.utils import ImageReader

    image = Image.new("L", (600, 300), 255)
    draw = ImageDraw.Draw(image)
    for i in range(12):
        draw.text((20, 20 + 22 * i), f"01/03/2024   CARD PAYMENT {i}   12.{i:02d}", fill=0)
    c.drawImage(ImageReader(image), 40, 400, width=515, height=257)  # type: ignore[attr-defined]
    c.showPage()  # type: ignore[attr-defined]


# --------------------------------------------------------------------------------------------
# The bundled samples
# --------------------------------------------------------------------------------------------

UK = Layout("uk", ruled=True, date_once_per_day=True)
DE = Layout(
    "de", currency="EUR", amounts="trailing_minus", date_format="%d.%m.", decimal=",", rows_per_page=12,
    headers={"date": "Buchungstag", "description": "Vorgang / Verwendungszweck", "amount": "Betrag (EUR)",
             "balance": "Saldo"},
    period_line="Kontoauszug Zeitraum: {start:%d.%m.%Y} bis {end:%d.%m.%Y}", opening_text="Alter Kontostand",
    closing_text="Neuer Kontostand", preamble=("Appeltaler Sparkasse", "IBAN DE12 5001 0517 0648 4898 90"),
)  # fmt: skip
US = Layout(
    "us", currency="USD", amounts="signed", date_format="%m/%d", running_balance=False, rows_per_page=20,
    headers={"date": "Date", "description": "Description", "amount": "Amount"},
    period_line="Statement Period {start:%m/%d/%Y} through {end:%m/%d/%Y}", opening_text="Beginning Balance",
    closing_text="Ending Balance", preamble=("First Orchard Bank, N.A.", "Checking account ending 4821"), symbol="$",
)  # fmt: skip


def sample_statements() -> dict[str, tuple[bytes, list[Tx], Decimal]]:
    """file name -> (PDF bytes, the transactions in it, opening balance)."""
    out = {}
    for layout, count, seed, opening in ((UK, 22, 11, Decimal("1262.40")), (DE, 18, 12, Decimal("2310.55")),
                                         (US, 16, 13, Decimal("3323.46"))):
        txs = transactions(layout.currency, date(2024, 3, 1), count, seed)
        name = f"{layout.name}-statement-2024-03.pdf"
        out[name] = (make_statement(layout, txs, opening), txs, opening)
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=SAMPLES, help="folder to write (default data/samples/statements)")
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    for name, (data, _txs, _opening) in sample_statements().items():
        (args.out / name).write_bytes(data)
        print(f"wrote {args.out / name} ({len(data):,} bytes)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
