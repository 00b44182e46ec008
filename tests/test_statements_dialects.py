"""statements on CSV exports in the dialects banks use, written here from known rows.

Expected counts, debits, credits and dates are computed with Decimal from the rows, not by the
parser. Each writer imitates one bank's export (column names, order, number and date format).
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable
from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path

import pytest

from workers.registry import ItemError

try:
    from conftest_tasks import run_job, run_task
except ImportError:  # tests/ became a package
    from tests.conftest_tasks import run_job, run_task

D = Decimal
ROWS_DE = [
    (date(2024, 3, 1), "REWE Markt GmbH", "Einkauf Filiale 4411", D("-62.47")),
    (date(2024, 3, 4), "Allianz Versicherungs-AG", "Beitrag Hausrat 03/2024", D("-18.90")),
    (date(2024, 3, 8), "Nordwind Obstgärten GmbH", "Gehalt März 2024", D("3245.10")),
    (date(2024, 3, 12), "Stadtwerke Appeltal", "Abschlag Strom", D("-84.00")),
    (date(2024, 3, 15), "Hausverwaltung Keller", "Miete April", D("-1180.00")),
    (date(2024, 3, 21), "ARAL AG", "Tankstelle 4411", D("-71.20")),
    (date(2024, 3, 28), "Finanzamt Appeltal", "Erstattung ESt 2022", D("1234.56")),
]
ROWS_EN = [
    (date(2024, 3, 1), "WHOLEFDS MKT 10234", "AUSTIN TX", D("-86.12")),
    (date(2024, 3, 2), "PAYROLL ACME ROBOTICS", "DIRECT DEP", D("3120.55")),
    (date(2024, 3, 4), "AMZN Mktp US*2K4RT5YZ1", "Amzn.com/bill WA", D("-64.30")),
    (date(2024, 3, 5), "SQ *BLUE BOTTLE COFFEE", "Oakland CA", D("-6.75")),
    (date(2024, 3, 7), "RENT PAYMENT OAK STREET APTS", "", D("-1450.00")),
    (date(2024, 3, 9), "SHELL OIL 57444238", "", D("-48.00")),
    (date(2024, 3, 12), "REFUND AMZN Mktp US", "", D("12.99")),
]


def figures(rows: list[tuple[date, str, str, Decimal]]) -> dict[str, object]:
    amounts = [r[3] for r in rows]
    return {
        "transactions": len(rows),
        "debits": str(sum((-a for a in amounts if a < 0), D("0.00"))),
        "credits": str(sum((a for a in amounts if a > 0), D("0.00"))),
        "first_date": min(r[0] for r in rows).isoformat(),
        "last_date": max(r[0] for r in rows).isoformat(),
    }


def de_num(value: Decimal, sign: bool = True) -> str:
    text = f"{abs(value) if not sign else value:,.2f}"
    return text.replace(",", "X").replace(".", ",").replace("X", ".")


def write_csv(rows: list[list[str]], delimiter: str = ",", preamble: str = "") -> str:
    buf = io.StringIO()
    csv.writer(buf, delimiter=delimiter, lineterminator="\r\n").writerows(rows)
    return preamble + buf.getvalue()


def dkb(rows: list) -> str:
    """DKB (2023 format): payer and payee columns, 'Betrag (€)', a preamble with the balance."""
    head = [["Buchungsdatum", "Wertstellung", "Status", "Zahlungspflichtige*r", "Zahlungsempfänger*in",
             "Verwendungszweck", "Umsatztyp", "IBAN", "Betrag (€)", "Gläubiger-ID", "Mandatsreferenz",
             "Kundenreferenz"]]
    body = [[d.strftime("%d.%m.%y"), d.strftime("%d.%m.%y"), "Gebucht",
             "Ana Lima" if a < 0 else payee, payee if a < 0 else "Ana Lima", purpose,
             "Ausgang" if a < 0 else "Eingang", "DE02120300000000202051", de_num(a), "", "", ""]
            for d, payee, purpose, a in rows]
    preamble = '"Girokonto";"DE12500105170648489890"\r\n"Kontostand vom 31.03.2024:";"4.123,45 €"\r\n\r\n'
    return write_csv(head + body, ";", preamble)


def ing(rows: list) -> str:
    """ING: 'Auftraggeber/Empfänger', Saldo and Betrag each followed by a Währung column."""
    head = [["Buchung", "Valuta", "Auftraggeber/Empfänger", "Buchungstext", "Verwendungszweck", "Saldo", "Währung",
             "Betrag", "Währung"]]
    balance, body = D("1000.00"), []
    for d, payee, purpose, a in rows:
        balance += a
        body.append([d.strftime("%d.%m.%Y"), d.strftime("%d.%m.%Y"), payee, "Lastschrift" if a < 0 else "Gutschrift",
                     purpose, de_num(balance), "EUR", de_num(a), "EUR"])
    return write_csv(head + body[::-1], ";", "Umsatzanzeige;Datei erstellt am: 01.04.2024 10:00\r\n\r\n")


def deutsche_bank(rows: list) -> str:
    """Deutsche Bank: 'Begünstigter / Auftraggeber', Soll and Haben columns, a closing 'Kontostand' line."""
    head = [["Buchungstag", "Wert", "Umsatzart", "Begünstigter / Auftraggeber", "Verwendungszweck", "IBAN", "BIC",
             "Soll", "Haben", "Währung"]]
    body = [[d.strftime("%d.%m.%Y"), d.strftime("%d.%m.%Y"), "SEPA", payee, purpose, "", "",
             de_num(a) if a < 0 else "", de_num(a) if a > 0 else "", "EUR"] for d, payee, purpose, a in rows]
    return write_csv(head + body + [["Kontostand", "31.03.2024", "", "", "", "", "", "", "4.123,45", "EUR"]], ";")


def german_beschreibung(rows: list) -> str:
    """A bank whose description column is 'Beschreibung' and payee 'Auftraggeber / Begünstigter'."""
    head = [["Datum", "Auftraggeber / Begünstigter", "Beschreibung", "Betrag (€)"]]
    return write_csv(head + [[d.strftime("%d.%m.%Y"), p, u, de_num(a)] for d, p, u, a in rows], ";")


def chase(rows: list) -> str:
    """Chase checking: month-first dates, signed amounts, a running balance, newest first."""
    head = [["Details", "Posting Date", "Description", "Amount", "Type", "Balance", "Check or Slip #"]]
    balance, body = D("2500.00"), []
    for d, payee, _purpose, a in rows:
        balance += a
        body.append(["DEBIT" if a < 0 else "CREDIT", d.strftime("%m/%d/%Y"), payee, f"{a:.2f}", "ACH_DEBIT",
                     f"{balance:.2f}", ""])
    return write_csv(head + body[::-1])


def us_parentheses_symbols(rows: list) -> str:
    """Quoted thousands, $ signs and parentheses for money out, a BOM and a summary line."""
    body = [[d.strftime("%m/%d/%Y"), payee, f"(${-a:,.2f})" if a < 0 else f"${a:,.2f}"] for d, payee, _p, a in rows]
    return "\ufeff" + write_csv([["Date", "Payee", "Amount"], *body, ["", "Total", "$1,478.37"]])


def barclays_like(rows: list) -> str:
    """UK: debit/credit columns ('Money out' / 'Money in'), d/m/Y, multi-line quoted memo."""
    head = [["Date", "Description", "Money out", "Money in", "Memo"]]
    body = [[d.strftime("%d/%m/%Y"), payee, f"{-a:.2f}" if a < 0 else "", f"{a:.2f}" if a > 0 else "",
             f"{purpose}\nline two"] for d, payee, purpose, a in rows]
    return write_csv(head + body, preamble="Account,20-00-00 12345678\r\nSort code 20-00-00\r\n")


DIALECTS: dict[str, tuple[Callable[[list], str], list, str, str]] = {
    # name: (writer, rows, encoding, currency)
    "dkb": (dkb, ROWS_DE, "utf-8", "EUR"),
    "ing": (ing, ROWS_DE, "cp1252", "EUR"),
    "deutsche-bank": (deutsche_bank, ROWS_DE, "cp1252", "EUR"),
    "beschreibung": (german_beschreibung, ROWS_DE, "utf-8", "EUR"),
    "chase": (chase, ROWS_EN, "utf-8", "USD"),
    "us-parentheses": (us_parentheses_symbols, ROWS_EN, "utf-8", "USD"),
    "barclays": (barclays_like, ROWS_EN, "utf-8", "GBP"),
}


def run(tmp_path: Path, name: str, text: str, encoding: str = "utf-8", **opts: object) -> tuple[dict, list[dict]]:
    src = tmp_path / "src"
    src.mkdir(exist_ok=True)
    (src / name).write_bytes(text.encode(encoding))
    result = run_task("statements", src / name, src, tmp_path / "out", **opts)
    with open(tmp_path / "out" / result["output"], newline="", encoding="utf-8") as fh:
        return result, list(csv.DictReader(fh))


@pytest.mark.parametrize("name", sorted(DIALECTS))
def test_each_bank_dialect_gives_exact_figures_currency_and_rows(tmp_path: Path, name: str) -> None:
    writer, rows, encoding, currency = DIALECTS[name]
    result, out = run(tmp_path, f"{name}.csv", writer(rows), encoding)
    got = {k: result[k] for k in ("transactions", "debits", "credits", "first_date", "last_date")}
    assert got == figures(rows)
    assert result["currency"] == currency and {r["currency"] for r in out} == {currency}
    assert not [w for w in result["warnings"] if "currency" in w], result["warnings"]
    for (_d, payee, _p, amount), row in zip(sorted(rows), sorted(out, key=lambda r: r["date"]), strict=True):
        assert payee in row["description"] and row["amount"] == str(amount)


def test_payee_and_purpose_columns_both_go_into_the_description(tmp_path: Path) -> None:
    _result, out = run(tmp_path, "b.csv", german_beschreibung(ROWS_DE))
    assert out[0]["description"] == "REWE Markt GmbH / Einkauf Filiale 4411"
    categories = {r["description"].split(" / ")[0]: r["category"] for r in out}
    assert categories["Allianz Versicherungs-AG"] == "Insurance" and categories["REWE Markt GmbH"] == "Groceries"
    _result, out = run(tmp_path, "dkb.csv", dkb(ROWS_DE))
    assert "REWE Markt GmbH" in out[0]["description"] and "Einkauf Filiale 4411" in out[0]["description"]
    allianz = next(r for r in out if "Allianz" in r["description"])
    assert allianz["description"].startswith("Allianz Versicherungs-AG / ") and allianz["category"] == "Insurance"


def test_running_balance_in_a_csv_is_reconciled(tmp_path: Path) -> None:
    result, _ = run(tmp_path, "chase.csv", chase(ROWS_EN))  # newest first
    assert result["balance_check"] == "ok"
    assert result["closing_balance"] == str(D("2500.00") + sum(r[3] for r in ROWS_EN))
    result, _ = run(tmp_path, "ing.csv", ing(ROWS_DE), "cp1252")
    assert result["balance_check"] == "ok"
    broken = chase(ROWS_EN).replace("-6.75", "-7.75")
    result, _ = run(tmp_path, "broken.csv", broken)
    assert result["balance_check"] == "mismatch" and result["balance_difference"] == "1.00"
    assert any(w.startswith("balance mismatch") for w in result["warnings"])
    result, _ = run(tmp_path, "b.csv", german_beschreibung(ROWS_DE))
    assert result["balance_check"] == "n/a" and "balance_difference" not in result


def test_closing_balance_line_after_the_table(tmp_path: Path) -> None:
    text = ("Date,Description,Amount\nOpening balance,,100.00\n2024-03-01,TESCO,-10.50\n2024-03-02,REFUND,2.25\n"
            "Closing balance,,91.75\n")
    result, _ = run(tmp_path, "c.csv", text, currency="GBP")
    assert (result["transactions"], result["skipped"]) == (2, 0)
    assert (result["balance_check"], result["opening_balance"], result["closing_balance"]) == ("ok", "100.00", "91.75")
    result, _ = run(tmp_path, "c.csv", text.replace("91.75", "90.75"), currency="GBP")
    assert result["balance_check"] == "mismatch" and result["balance_difference"] == "-1.00"


# --------------------------------------------------------------------------------------------
# Dates
# --------------------------------------------------------------------------------------------


def test_us_file_with_every_day_up_to_12_is_month_first(tmp_path: Path) -> None:
    """03/01 .. 03/12 read day-first would run from January to December: the span decides."""
    days = [date(2024, 3, d) for d in (1, 2, 4, 5, 8, 11, 12)]
    text = "Date,Description,Amount\n" + "".join(f"{d:%m/%d/%Y},SHOP {i},-1.{i}0\n" for i, d in enumerate(days))
    result, out = run(tmp_path, "us.csv", text)
    assert result["date_format"] == "m/d/Y" and result["date_format_basis"] == "span"
    assert [r["date"] for r in out] == [d.isoformat() for d in days]
    assert not [w for w in result["warnings"] if "dates are ambiguous" in w]
    # the same days written day-first by a UK bank are read day-first
    text = "Date,Description,Amount\n" + "".join(f"{d:%d/%m/%Y},SHOP {i},-1.{i}0\n" for i, d in enumerate(days))
    result, out = run(tmp_path, "uk.csv", text)
    assert result["date_format"] == "d/m/Y" and [r["date"] for r in out] == [d.isoformat() for d in days]


def test_what_stays_ambiguous_is_a_loud_warning(tmp_path: Path) -> None:
    result, out = run(tmp_path, "one.csv", "Date,Description,Amount\n03/04/2024,SHOP,-1.00\n")
    assert result["date_format"] == "d/m/Y" and result["date_format_basis"] == "default"
    assert any("dates are ambiguous" in w and "date_order=mdy" in w for w in result["warnings"])
    result, out = run(tmp_path, "one.csv", "Date,Description,Amount\n03/04/2024,SHOP,-$1.00\n")
    assert result["date_format"] == "m/d/Y" and result["date_format_basis"] == "currency"
    assert any("read as m/d/Y (the currency only decided it)" in w for w in result["warnings"])
    result, out = run(tmp_path, "one.csv", "Date,Description,Amount\n03/04/2024,SHOP,-1.00\n", date_order="mdy")
    assert out[0]["date"] == "2024-03-04" and not [w for w in result["warnings"] if "ambiguous" in w]


def test_german_month_names_and_day_dots() -> None:
    from workers.tasks.statements import parse_statement

    st = parse_statement("Datum;Text;Betrag\n5. März 2024;A;-1,00\n28. Okt. 2024;B;2,00\n")
    assert [t.date.isoformat() for t in st.transactions] == ["2024-03-05", "2024-10-28"]


# --------------------------------------------------------------------------------------------
# Currencies
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("text, currency, source", [
    ("Konto;DE12 5001 0517 0648 4898 90\nDatum;Text;Betrag\n01.03.2024;X;-1,00\n", "EUR", "iban"),
    ("Sort code 20-00-00,Account 1234\nDate,Description,Amount\n01/03/2024,X,-1.00\n", "GBP", "iban"),
    ("Date,Description,Amount (GBP)\n01/03/2024,X,-1.00\n", "GBP", "header"),
    ("Date,Description,Amount\n01/03/2024,X,-€1.00\n", "EUR", "amounts"),
    ("Currency: CHF\nDate,Description,Amount\n01/03/2024,X,-1.00\n", "CHF", "text"),
    ("Datum;Verwendungszweck;Betrag\n01.03.2024;X;-1,00\n", "EUR", "locale"),
    ("Date,Description,Amount\n03/14/2024,X,-1.00\n", "USD", "locale"),
    ("Date,Description,Amount\n14/03/2024,X,-1.00\n", "", "unknown"),
])  # fmt: skip
def test_currency_is_inferred_per_file(tmp_path: Path, text: str, currency: str, source: str) -> None:
    result, out = run(tmp_path, "f.csv", text)
    assert (result["currency"], result["currency_source"]) == (currency, source)
    assert out[0]["currency"] == currency
    warned = [w for w in result["warnings"] if w.startswith("currency")]
    assert bool(warned) == (source in ("locale", "unknown"))


def test_no_total_ever_mixes_currencies(tmp_path: Path) -> None:
    src = tmp_path / "src"
    src.mkdir()
    (src / "usd.csv").write_text("Date,Description,Amount\n03/01/2024,A,-$10.00\n", encoding="utf-8")
    (src / "gbp.csv").write_text("Date,Description,Amount (£)\n01/03/2024,A,-20.00\n", encoding="utf-8")
    (src / "eur.csv").write_text("Datum;Beschreibung;Betrag\n01.03.2024;A;-30,00\n", encoding="utf-8")
    (src / "unknown1.csv").write_text("Date,Description,Amount\n01/03/2024,A,-40.00\n", encoding="utf-8")
    (src / "unknown2.csv").write_text("Date,Description,Amount\n02/03/2024,A,-50.00\n", encoding="utf-8")
    out = tmp_path / "out"
    run_job("statements", src, out)
    with open(out / "statements_report.csv", newline="", encoding="utf-8") as fh:
        totals = [r for r in csv.DictReader(fh) if r["kind"] == "total"]
    assert sorted((r["currency"], r["source"], r["amount"]) for r in totals) == [
        ("", "unknown1.csv", "-40.00"), ("", "unknown2.csv", "-50.00"),
        ("EUR", "", "-30.00"), ("GBP", "", "-20.00"), ("USD", "", "-10.00"),
    ]  # fmt: skip
    from openpyxl import load_workbook

    summary = list(load_workbook(out / "statements_report.xlsx")["Summary"].iter_rows(values_only=True))
    blocks = {row[1] for row in summary[1:]}
    assert blocks == {"EUR", "GBP", "USD", "? unknown1.csv", "? unknown2.csv"}


def test_a_file_that_is_not_a_statement_still_fails_with_the_reason(tmp_path: Path) -> None:
    with pytest.raises(ItemError, match="no header row with a date and an amount"):
        run(tmp_path, "x.csv", "name,email\nAna,ana@example.com\nBo,bo@example.com\n")


def test_dates_spread_over_a_year_are_not_called_ambiguous_by_span(tmp_path: Path) -> None:
    start = date(2024, 1, 1)
    days = [start + timedelta(days=30 * i) for i in range(6)]
    text = "Date,Description,Amount\n" + "".join(f"{d:%d/%m/%Y},X,-1.00\n" for d in days)
    _result, out = run(tmp_path, "year.csv", text)
    assert [r["date"] for r in out] == [d.isoformat() for d in days]
