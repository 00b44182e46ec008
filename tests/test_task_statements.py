"""statements: real exports in several bank dialects -> transactions, categories, reports."""

from __future__ import annotations

import csv
from decimal import Decimal
from pathlib import Path

import pytest

from workers import registry
from workers.registry import ItemError, TaskContext, TaskError
from workers.tasks.statements import (
    StatementError,
    decide_decimal,
    default_rules_path,
    load_rules,
    parse_amount,
    parse_statement,
)

try:
    from conftest_tasks import SAMPLES, run_job, run_task
except ImportError:  # tests/ became a package
    from tests.conftest_tasks import SAMPLES, run_job, run_task

STATEMENTS = SAMPLES / "statements"


def run(tmp_path: Path, name: str, data: str | bytes, encoding: str = "utf-8", **opts) -> tuple[dict, list[dict]]:
    src = tmp_path / "src"
    src.mkdir(exist_ok=True)
    path = src / name
    path.write_bytes(data if isinstance(data, bytes) else data.encode(encoding))
    out = tmp_path / "out"
    result = run_task("statements", path, src, out, **opts)
    with open(out / result["output"], newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    return result, rows


def failure(tmp_path: Path, name: str, data: str | bytes, **opts) -> str:
    with pytest.raises(ItemError) as info:
        run(tmp_path, name, data, **opts)
    return str(info.value)


# --------------------------------------------------------------------------------------------
# The three bundled dialects
# --------------------------------------------------------------------------------------------


def test_uk_export_with_preamble_and_paid_in_out_columns(tmp_path: Path) -> None:
    result, rows = run(tmp_path, "uk.csv", (STATEMENTS / "uk-current-account-2024-03.csv").read_bytes())
    assert result["transactions"] == 11 and result["skipped"] == 0
    assert result["delimiter"] == "," and result["header_line"] == 5
    assert result["date_format"] == "d/m/Y" and result["date_format_ambiguous"] is False
    assert result["amounts"] == "debit/credit" and result["decimal"] == "."
    assert (result["first_date"], result["last_date"]) == ("2024-03-01", "2024-03-28")
    assert result["totals"] == {"GBP": {"in": 2685.0, "out": -1434.49}}
    assert result["categories"] == {
        "Cash": -40.0,
        "Eating out": -4.2,
        "Groceries": -120.5,
        "Income": 35.0,
        "Rent & Mortgage": -1150.0,
        "Salary": 2650.0,
        "Subscriptions": -10.99,
        "Transport": -12.8,
        "Utilities": -96.0,
    }
    assert rows[0] == {
        "date": "2024-03-01",
        "description": "SALARY NORTHWIND ORCHARDS",
        "amount": "2650.00",
        "currency": "GBP",
        "category": "Salary",
        "source": "uk.csv",
        "line": "6",
    }
    assert rows[4]["description"] == "RENT 14 HARBOUR ROW" and rows[4]["amount"] == "-1150.00"
    assert result["output"] == "uk.csv.transactions.csv"


def test_us_export_month_first_dollar_amounts(tmp_path: Path) -> None:
    result, rows = run(tmp_path, "us.csv", (STATEMENTS / "us-checking-2024-03.csv").read_bytes())
    assert result["date_format"] == "m/d/Y"  # 03/29/2024 settles it for the whole file
    assert result["totals"] == {"USD": {"in": 3120.55, "out": -1695.81}}
    by_desc = {r["description"]: r for r in rows}
    assert by_desc["WHOLE FOODS MARKET #10234, AUSTIN TX"]["amount"] == "-86.12"
    assert by_desc["WHOLE FOODS MARKET #10234, AUSTIN TX"]["category"] == "Groceries"
    assert by_desc["WHOLE FOODS MARKET #10234, AUSTIN TX"]["date"] == "2024-03-29"
    assert by_desc["PAYROLL ACME ROBOTICS INC"]["amount"] == "3120.55"
    assert by_desc["RENT PAYMENT - OAK STREET APTS"]["amount"] == "-1450.00"
    assert by_desc["MONTHLY SERVICE FEE"]["category"] == "Fees & charges"
    assert by_desc["UBER *TRIP HELP.UBER.COM"]["category"] == "Transport"
    assert by_desc["CHEVRON 0091234"]["category"] == "Fuel"
    assert {r["currency"] for r in rows} == {"USD"}


def test_german_export_semicolons_decimal_commas_cp1252(tmp_path: Path) -> None:
    result, rows = run(tmp_path, "de.csv", (STATEMENTS / "de-girokonto-2024-03.csv").read_bytes())
    assert result["encoding"] == "cp1252"
    assert (result["delimiter"], result["decimal"], result["date_format"]) == (";", ",", "d.m.Y")
    assert result["header_line"] == 4
    assert result["totals"] == {"EUR": {"in": 3245.1, "out": -1251.42}}
    salary = next(r for r in rows if r["amount"] == "3245.10")
    assert salary["description"] == "Nordwind Obstgärten GmbH / Gehalt März 2024 / Gutschrift"
    assert salary["category"] == "Salary" and salary["currency"] == "EUR" and salary["date"] == "2024-03-25"
    assert {r["description"].split(" / ")[0]: r["category"] for r in rows} == {
        "REWE Markt GmbH": "Groceries",
        "Nordwind Obstgärten GmbH": "Salary",
        "ARAL AG": "Fuel",
        "Stadtwerke Appeltal": "Utilities",
        "Hausverwaltung Keller": "Rent & Mortgage",
        "Bäckerei Sonnenkorn": "Eating out",
        "Kontoführung Februar": "Fees & charges",
        "DB Vertrieb GmbH": "Transport",
    }


# --------------------------------------------------------------------------------------------
# Dates, amounts, columns
# --------------------------------------------------------------------------------------------


def test_day_first_is_decided_from_all_rows(tmp_path: Path) -> None:
    text = "Date,Description,Amount\n01/02/2024,A,-1.00\n05/02/2024,B,-2.00\n13/02/2024,C,3.00\n"
    result, rows = run(tmp_path, "a.csv", text)
    assert result["date_format"] == "d/m/Y" and result["date_format_ambiguous"] is False
    assert [r["date"] for r in rows] == ["2024-02-01", "2024-02-05", "2024-02-13"]


def test_month_first_is_decided_from_all_rows(tmp_path: Path) -> None:
    text = "Date,Description,Amount\n01/02/2024,A,-1.00\n01/05/2024,B,-2.00\n02/13/2024,C,3.00\n"
    result, rows = run(tmp_path, "a.csv", text)
    assert result["date_format"] == "m/d/Y"
    assert [r["date"] for r in rows] == ["2024-01-02", "2024-01-05", "2024-02-13"]


def test_ambiguous_dates_follow_the_option_then_the_order(tmp_path: Path) -> None:
    text = "Date,Description,Amount\n02/01/2024,A,-1.00\n03/01/2024,B,-2.00\n01/02/2024,C,3.00\n"
    result, rows = run(tmp_path, "a.csv", text)
    # d/m keeps the statement sorted (2 Jan, 3 Jan, 1 Feb); m/d would not (1 Feb, 1 Mar, 2 Jan)
    assert result["date_format"] == "d/m/Y" and result["date_format_ambiguous"] is True
    assert [r["date"] for r in rows] == ["2024-01-02", "2024-01-03", "2024-02-01"]
    result, rows = run(tmp_path, "a.csv", text, date_order="mdy")
    assert result["date_format"] == "m/d/Y"
    assert [r["date"] for r in rows] == ["2024-02-01", "2024-03-01", "2024-01-02"]


def test_iso_dates_with_times_two_digit_years_and_month_names() -> None:
    st = parse_statement("Date;Text;Amount\n2024-03-05 14:22:01;A;-1,5\n2024-03-06T08:00:00Z;B;2\n")
    assert [t.date.isoformat() for t in st.transactions] == ["2024-03-05", "2024-03-06"]
    assert [t.amount for t in st.transactions] == [Decimal("-1.50"), Decimal("2.00")]
    st = parse_statement("Date,Description,Amount\n5 Mar 2024,X,-1.00\n12 Mar 2024,Y,2\n")
    assert [t.date.isoformat() for t in st.transactions] == ["2024-03-05", "2024-03-12"]
    st = parse_statement("Datum;Text;Betrag\n05.03.24;X;-1,00\n28.03.24;Y;2,00\n")
    assert st.dialect["date_format"] == "d.m.y"
    assert [t.date.isoformat() for t in st.transactions] == ["2024-03-05", "2024-03-28"]


@pytest.mark.parametrize(
    "raw, decimal, expected",
    [
        ("1.234,56", ",", "1234.56"),
        ("1,234.56", ".", "1234.56"),
        ("-45,00", ",", "-45.00"),
        ("(12.50)", ".", "-12.50"),
        ("12.50-", ".", "-12.50"),
        ("€ -3,00", ",", "-3.00"),
        ("-$1,450.00", ".", "-1450.00"),
        ("1 234,56", ",", "1234.56"),
        ("1\u202f234,56", ",", "1234.56"),
        ("1'234.50", ".", "1234.50"),
        ("45.00 DR", ".", "-45.00"),
        ("12.00 CR", ".", "12.00"),
        ("\u22127,25", ",", "-7.25"),
        ("+12", ".", "12.00"),
        ("0.125", ".", "0.125"),
    ],
)
def test_amounts_in_every_national_format_parse_to_exact_decimals(raw: str, decimal: str, expected: str) -> None:
    assert parse_amount(raw, decimal) == Decimal(expected)
    assert str(parse_amount(raw, decimal)) == expected


def test_amounts_that_are_not_amounts() -> None:
    assert parse_amount("", ".") is None and parse_amount("-", ".") is None and parse_amount("n/a", ".") is None
    with pytest.raises(StatementError, match=r"cannot read amount '1\.2\.3,4,5'"):
        parse_amount("1.2.3,4,5", ",")


def test_decimal_mark_is_decided_per_file() -> None:
    assert decide_decimal(["1,234.50", "12,00"]) == "."  # the unambiguous value wins the vote... twice
    assert decide_decimal(["-62,47", "3.245,10", "1,234"]) == ","
    assert decide_decimal(["1,234", "5,678"]) == "."  # three digits after: thousands, default "."
    assert decide_decimal(["1,234"], fallback=",") == ","
    assert decide_decimal(["1.234.567"]) == ","
    assert decide_decimal(["12"]) == "."


def test_separate_debit_and_credit_columns_with_a_total_row(tmp_path: Path) -> None:
    text = (
        "Transaction Date,Transaction Description,Debit Amount,Credit Amount,Balance\n"
        "2024-03-01,CARD PAYMENT TESCO,12.50,,100.00\n"
        "2024-03-02,PAYROLL,,1000.00,1100.00\n"
        "2024-03-03,NEGATIVE DEBIT STYLE,-3.00,,1097.00\n"
        "Total,,15.50,1000.00,\n"
    )
    result, rows = run(tmp_path, "dc.csv", text, currency="gbp")
    assert [r["amount"] for r in rows] == ["-12.50", "1000.00", "-3.00"]
    assert {r["currency"] for r in rows} == {"GBP"}  # from the currency option
    assert result["amounts"] == "debit/credit"
    assert result["skipped"] == 1 and result["skipped_examples"] == ["line 5: not a date 'Total'"]


def test_unsigned_amount_with_dr_cr_indicator_tab_separated_utf16(tmp_path: Path) -> None:
    text = (
        "Date\tDetails\tAmount\tCR/DR\tCurrency\r\n"
        "05.03.2024\tLIDL 123\t12,50\tDR\tEUR\r\n"
        "06.03.2024\tGEHALT MAERZ\t1.000,00\tCR\tEUR\r\n"
        "07.03.2024\tCASHBACK\t2,00\tCR\tchf\r\n"
    )
    result, rows = run(tmp_path, "excel.txt", text, encoding="utf-16")
    assert result["encoding"] == "utf-16" and result["delimiter"] == "tab"
    assert result["amounts"] == "amount+indicator"
    assert [(r["amount"], r["currency"], r["category"]) for r in rows] == [
        ("-12.50", "EUR", "Groceries"),
        ("1000.00", "EUR", "Salary"),
        ("2.00", "CHF", "Income"),
    ]


def test_currency_from_header_and_symbols() -> None:
    st = parse_statement("Datum;Buchungstext;Betrag CHF\n01.03.2024;Migros;-1'234.50\n02.03.2024;Lohn;5'000.00\n")
    assert [(t.amount, t.currency) for t in st.transactions] == [(Decimal("-1234.50"), "CHF"),
                                                                  (Decimal("5000.00"), "CHF")]
    st = parse_statement("Date,Description,Amount\n2024-03-01,X,-£3.20\n2024-03-02,Y,£10.00\n")
    assert {t.currency for t in st.transactions} == {"GBP"}


def test_rows_that_cannot_be_read_are_skipped_not_guessed() -> None:
    text = (
        "Date,Payee,Memo,Amount\n"
        "03/15/2024,ACME,inv 1,(1,234.50)\n"  # unquoted thousands: 5 fields, would misalign
        "03/16/2024,Opening balance,,\n"  # no amount
        "03/17/2024,Y,z,45.00-\n"
        "\n"
        "03/18/2024,Short row\n"
    )
    st = parse_statement(text)
    assert [(t.description, t.amount) for t in st.transactions] == [("Y / z", Decimal("-45.00"))]
    assert st.skipped == ["line 2: 5 fields, expected 4", "line 3: no amount", "line 6: 2 fields, expected 4"]


def test_headerless_export_is_recognised_from_its_contents() -> None:
    st = parse_statement("05/03/2024,TESCO STORES,-12.50\n06/03/2024,SALARY ACME,1000.00\n17/03/2024,ALDI,-3.10\n")
    assert st.dialect["header_line"] is None and st.dialect["date_format"] == "d/m/Y"
    assert [(t.date.isoformat(), t.description, t.amount) for t in st.transactions] == [
        ("2024-03-05", "TESCO STORES", Decimal("-12.50")),
        ("2024-03-06", "SALARY ACME", Decimal("1000.00")),
        ("2024-03-17", "ALDI", Decimal("-3.10")),
    ]


# --------------------------------------------------------------------------------------------
# Rules
# --------------------------------------------------------------------------------------------

RULES = """
default = "Other"
inherit = false  # this file alone: not layered over the user's and the bundled rules

[categories]
"Coffee" = ["re:^card \\\\d{4} .*coffee", "espresso"]
"Food" = ["coffee", "bakery"]
"Pay" = ["/\\\\bpayroll\\\\b/"]
"""


def test_custom_rules_first_match_wins_regex_and_substrings(tmp_path: Path) -> None:
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "my rules.toml").write_text(RULES, encoding="utf-8")
    text = (
        "Date,Description,Amount\n"
        "2024-03-01,CARD 1234 Corner Coffee,-3.00\n"  # regex in "Coffee" matches first
        "2024-03-02,Coffee beans online,-12.00\n"  # only the substring in "Food"
        "2024-03-03,Espresso bar,-2.00\n"
        "2024-03-04,ACME PAYROLL MARCH,2000.00\n"
        "2024-03-05,payrolling ltd,-1.00\n"  # \\b keeps this out of "Pay"
        "2024-03-06,Refund,5.00\n"  # no default_income: the default
    )
    # a relative rules path is found in the job's source folder
    result, rows = run(tmp_path, "s.csv", text, rules="my rules.toml")
    assert [r["category"] for r in rows] == ["Coffee", "Food", "Coffee", "Pay", "Other", "Other"]
    assert result["rules"].endswith("my rules.toml")
    assert result["categories"] == {"Coffee": -5.0, "Food": -12.0, "Other": 4.0, "Pay": 2000.0}


def test_bundled_rules_resolve_through_the_data_package() -> None:
    path = default_rules_path()
    assert path.is_file() and path.parts[-3:] == ("data", "rules", "default_rules.toml")
    rules = load_rules(path)
    assert rules.default == "Uncategorised" and rules.default_income == "Other income"
    assert rules.categorise("NETFLIX.COM", Decimal(-10)) == "Subscriptions"  # not "tfl" -> Transport
    assert rules.categorise("Current account interest", Decimal(-1)) == "Uncategorised"  # not "rent"
    assert rules.categorise("Coffee shop", Decimal(-1)) == "Eating out"  # not "fee"
    assert rules.categorise("mystery", Decimal(5)) == "Other income"


def test_broken_rules_are_refused_at_submit_with_the_reason(tmp_path: Path) -> None:
    def refused(rules: Path) -> str:
        with pytest.raises(TaskError) as info:
            registry.get("statements").parse_options({"rules": str(rules)})
        return str(info.value)

    assert "rules file not found" in refused(tmp_path / "nope.toml")
    bad = tmp_path / "bad.toml"
    bad.write_text("[categories\nx = 1", encoding="utf-8")
    assert "is not valid TOML" in refused(bad)
    bad.write_text('[categories]\n"X" = ["re:(unclosed"]\n', encoding="utf-8")
    assert "category 'X': bad regex '(unclosed'" in refused(bad)
    bad.write_text('[categories]\n"X" = 3\n', encoding="utf-8")
    assert "category 'X' must be a list of strings" in refused(bad)


def test_rules_gone_after_submit_fail_the_item_with_the_reason(tmp_path: Path) -> None:
    rules = tmp_path / "rules.toml"
    rules.write_text('[categories]\nX = ["x"]\n', encoding="utf-8")
    spec = registry.get("statements")
    opts = spec.parse_options({"rules": str(rules)})
    rules.unlink()
    (tmp_path / "a.csv").write_text("Date,Description,Amount\n2024-03-01,X,-1.00\n", encoding="utf-8")
    ctx = TaskContext(options=opts, output_dir=tmp_path / "out", rel_path="a.csv", source_root=tmp_path)
    with pytest.raises(ItemError, match="rules file not found"):
        spec.func(tmp_path / "a.csv", ctx)


# --------------------------------------------------------------------------------------------
# Files that are not statements
# --------------------------------------------------------------------------------------------


def test_unparseable_files_fail_with_a_clear_reason(tmp_path: Path) -> None:
    assert failure(tmp_path, "e.csv", b"") == "empty file"
    assert failure(tmp_path, "e2.csv", b"\n\n  \n") == "empty file"
    pdf = (SAMPLES / "documents" / "invoice-2024-0042.pdf").read_bytes()
    assert failure(tmp_path, "statement.pdf", pdf) == (
        "no transaction table found in the PDF (no header line naming a date and an amount)"
    )
    assert failure(tmp_path, "x.csv", bytes((i * 31 + 7) % 256 for i in range(3000))) == (
        "not a statement (looks like binary): statements reads CSV exports and PDF statements"
    )
    contacts = (SAMPLES / "data" / "contacts.csv").read_bytes()
    assert failure(tmp_path, "contacts.csv", contacts) == (
        "no header row with a date and an amount (or debit/credit) column in the first 50 lines"
    )
    assert failure(tmp_path, "prose.txt", "Dear customer,\nyour statement is attached.\n") == (
        "no header row with a date and an amount (or debit/credit) column in the first 50 lines"
    )
    reason = failure(tmp_path, "nodates.csv", "Date,Description,Amount\nsoon,X,1\nlater,Y,2\n")
    assert reason == "no recognisable dates (e.g. 'soon')"
    reason = failure(tmp_path, "noamounts.csv", "Date,Description,Amount\n2024-03-01,X,\n2024-03-02,Y,n/a\n")
    assert reason == "no transactions found (line 2: no amount)"


# --------------------------------------------------------------------------------------------
# The job report
# --------------------------------------------------------------------------------------------

APRIL = ("Date,Description,Amount,Currency\n2024-04-02,TESCO,-10.00,GBP\n2024-04-20,TESCO,-5.55,GBP\n"
         "2024-04-25,=HYPERLINK(\"x\"),-1.00,GBP\n")


def test_job_report_csv_and_xlsx(tmp_path: Path) -> None:
    from openpyxl import load_workbook

    src = tmp_path / "src"
    (src / "2024").mkdir(parents=True)
    for f in STATEMENTS.glob("*.csv"):
        (src / "2024" / f.name).write_bytes(f.read_bytes())
    (src / "april.csv").write_text(APRIL, encoding="utf-8")
    (src / "broken.csv").write_text("not, a, statement\n", encoding="utf-8")
    out = tmp_path / "out"
    rows = run_job("statements", src, out)
    status = {rel: s for rel, s, _r, _e in rows}
    assert status == {
        "2024/de-girokonto-2024-03.csv": "done",
        "2024/uk-current-account-2024-03.csv": "done",
        "2024/us-checking-2024-03.csv": "done",
        "april.csv": "done",
        "broken.csv": "failed",
    }
    assert (out / "2024" / "de-girokonto-2024-03.csv.transactions.csv").is_file()

    with open(out / "statements_report.csv", newline="", encoding="utf-8") as fh:
        report = list(csv.DictReader(fh))
    totals = {(r["month"], r["category"], r["currency"]): (r["amount"], r["count"])
              for r in report if r["kind"] == "total"}
    assert totals[("2024-03", "Groceries", "GBP")] == ("-120.50", "3")
    assert totals[("2024-03", "Groceries", "EUR")] == ("-62.47", "1")
    assert totals[("2024-03", "Salary", "USD")] == ("3120.55", "1")
    assert totals[("2024-04", "Groceries", "GBP")] == ("-15.55", "2")
    assert totals[("2024-04", "Uncategorised", "GBP")] == ("-1.00", "1")
    txs = [r for r in report if r["kind"] == "transaction"]
    assert len(txs) == 11 + 8 + 8 + 3
    assert [r["date"] for r in txs] == sorted(r["date"] for r in txs)
    assert report.index(next(r for r in report if r["kind"] == "transaction")) == len(totals)  # totals first
    tesco = next(r for r in txs if r["description"] == "TESCO STORES 3021")
    assert tesco == {
        "kind": "transaction", "month": "2024-03", "category": "Groceries", "currency": "GBP",
        "amount": "-54.30", "count": "1", "date": "2024-03-02", "description": "TESCO STORES 3021",
        "source": "2024/uk-current-account-2024-03.csv", "line": "7",
    }  # fmt: skip
    grand = sum(Decimal(r["amount"]) for r in txs)
    assert grand == sum(Decimal(a) for a, _c in totals.values())

    wb = load_workbook(out / "statements_report.xlsx")
    assert wb.sheetnames == ["Summary", "Transactions", "Statements", "Warnings"]
    summary = [list(r) for r in wb["Summary"].iter_rows(values_only=True)]
    assert summary[0] == ["Category", "Currency", "2024-03", "2024-04", "Total"]
    pivot = {(r[0], r[1]): r[2:] for r in summary[1:]}
    assert pivot[("Groceries", "GBP")] == [-120.5, -15.55, pytest.approx(-136.05)]
    assert pivot[("Salary", "EUR")] == [3245.1, None, 3245.1]
    assert pivot[("Total", "USD")] == [pytest.approx(1424.74), 0, pytest.approx(1424.74)]
    assert pivot[("Uncategorised", "GBP")] == [None, -1.0, -1.0]
    sheet = [list(r) for r in wb["Transactions"].iter_rows(values_only=True)]
    assert sheet[0] == ["Date", "Description", "Amount", "Currency", "Category", "Source", "Line"]
    assert len(sheet) == 1 + len(txs)
    formula_row = next(r for r in sheet if r[5] == "april.csv" and r[2] == -1.0)
    assert formula_row[1] == '=HYPERLINK("x")'  # text, never a live formula
    assert wb["Transactions"].cell(row=sheet.index(formula_row) + 1, column=2).data_type == "s"


def test_report_of_a_job_where_everything_failed(tmp_path: Path) -> None:
    src = tmp_path / "src"
    src.mkdir()
    (src / "junk.csv").write_text("nothing here\n", encoding="utf-8")
    out = tmp_path / "out"
    rows = run_job("statements", src, out)
    assert rows[0][1] == "failed"
    lines = (out / "statements_report.csv").read_text(encoding="utf-8").splitlines()
    assert lines == ["kind,month,category,currency,amount,count,date,description,source,line"]
    assert (out / "statements_report.xlsx").is_file()


def test_statements_options_default_to_auto_and_refuse_an_unknown_date_order() -> None:
    spec = registry.get("statements")
    assert spec.parse_options({}) == {
        "rules": "", "currency": "", "date_order": "auto", "decimal": "auto", "delimiter": "auto", "encoding": "auto",
    }  # fmt: skip
    with pytest.raises(TaskError, match="choose one of auto, ymd, dmy, mdy"):
        spec.parse_options({"date_order": "dym"})
    assert spec.finalize is not None
