"""Categories: the bundled rules on merchant strings as US, UK and German banks print them, and
rules files layered (bundled < user's rules.toml < --opt rules=FILE)."""

from __future__ import annotations

import csv
from decimal import Decimal
from pathlib import Path

import pytest

from workers import registry
from workers.registry import TaskError
from workers.tasks.statements.rules import (
    default_rules_path,
    load_rules,
    normalise,
    rules_for,
    user_rules_path,
)

try:
    from conftest_tasks import run_task
except ImportError:  # tests/ became a package
    from tests.conftest_tasks import run_task

# (description as the bank prints it, amount sign, category a person would give it)
MERCHANTS = [
    # United States
    ("WHOLEFDS MKT 10234 AUSTIN TX", -1, "Groceries"),
    ("WHOLE FOODS MARKET #10234", -1, "Groceries"),
    ("TRADER JOE'S #552", -1, "Groceries"),
    ("KROGER #123", -1, "Groceries"),
    ("SAFEWAY #1234", -1, "Groceries"),
    ("COSTCO WHSE #0123", -1, "Groceries"),
    ("PUBLIX #1234", -1, "Groceries"),
    ("AMZN Mktp US*2K4RT5YZ1", -1, "Shopping"),
    ("Amazon.com*MK1AB2CD3", -1, "Shopping"),
    ("TARGET 00012345", -1, "Shopping"),
    ("WAL-MART #3345", -1, "Shopping"),
    ("THE HOME DEPOT #1234", -1, "Shopping"),
    ("BEST BUY 00012345", -1, "Shopping"),
    ("SQ *BLUE BOTTLE COFFEE", -1, "Eating out"),
    ("TST* SHAKE SHACK 1234", -1, "Eating out"),
    ("STARBUCKS STORE 12345", -1, "Eating out"),
    ("MCDONALD'S F12345", -1, "Eating out"),
    ("CHIPOTLE 1234", -1, "Eating out"),
    ("DOORDASH*CHIPOTLE", -1, "Eating out"),
    ("UBER *EATS PENDING", -1, "Eating out"),
    ("UBER *TRIP HELP.UBER.COM", -1, "Transport"),
    ("LYFT *RIDE SUN 7PM", -1, "Transport"),
    ("SHELL OIL 57444238", -1, "Fuel"),
    ("CHEVRON 0091234", -1, "Fuel"),
    ("EXXONMOBIL 4567", -1, "Fuel"),
    ("NETFLIX.COM", -1, "Subscriptions"),
    ("SPOTIFY USA", -1, "Subscriptions"),
    ("APPLE.COM/BILL", -1, "Subscriptions"),
    ("HULU 877-8244858", -1, "Subscriptions"),
    ("CVS/PHARMACY #01234", -1, "Health"),
    ("WALGREENS #1234", -1, "Health"),
    ("COMCAST CABLE COMM", -1, "Utilities"),
    ("VERIZON WIRELESS", -1, "Utilities"),
    ("AT&T*BILL PAYMENT", -1, "Utilities"),
    ("PG&E WEB ONLINE", -1, "Utilities"),
    ("GEICO *AUTO", -1, "Insurance"),
    ("STATE FARM INSURANCE", -1, "Insurance"),
    ("DELTA AIR LINES", -1, "Travel"),
    ("MARRIOTT HOTEL BOSTON", -1, "Travel"),
    ("AIRBNB * HMABCDEF", -1, "Travel"),
    ("ATM WITHDRAWAL 1234 MAIN ST", -1, "Cash"),
    ("PAYROLL ACME ROBOTICS", 1, "Salary"),
    # United Kingdom
    ("TESCO STORES 3021", -1, "Groceries"),
    ("SAINSBURYS S/MKTS", -1, "Groceries"),
    ("ASDA SUPERSTORE", -1, "Groceries"),
    ("WAITROSE 123", -1, "Groceries"),
    ("M&S SIMPLY FOOD", -1, "Groceries"),
    ("LIDL GB LONDON", -1, "Groceries"),
    ("ALDI 45 782", -1, "Groceries"),
    ("OCADO RETAIL LTD", -1, "Groceries"),
    ("PRET A MANGER", -1, "Eating out"),
    ("GREGGS PLC", -1, "Eating out"),
    ("COSTA COFFEE 43012", -1, "Eating out"),
    ("NANDOS WEMBLEY", -1, "Eating out"),
    ("DELIVEROO", -1, "Eating out"),
    ("JUST EAT.CO.UK LTD", -1, "Eating out"),
    ("TFL TRAVEL CH", -1, "Transport"),
    ("TRAINLINE.COM", -1, "Transport"),
    ("BP 1234 KINGS ROAD", -1, "Fuel"),
    ("ESSO CIRCLE K", -1, "Fuel"),
    ("BOOTS 1132", -1, "Health"),
    ("SUPERDRUG STORES", -1, "Health"),
    ("PUREGYM LTD", -1, "Health"),
    ("BRITISH GAS", -1, "Utilities"),
    ("THAMES WATER", -1, "Utilities"),
    ("OCTOPUS ENERGY", -1, "Utilities"),
    ("VIRGIN MEDIA", -1, "Utilities"),
    ("LB CAMDEN COUNCIL TAX", -1, "Utilities"),
    ("ARGOS LTD", -1, "Shopping"),
    ("JOHN LEWIS", -1, "Shopping"),
    ("AMAZON.CO.UK*AB12C", -1, "Shopping"),
    ("AMZNMKTPLACE", -1, "Shopping"),
    ("DISNEY PLUS", -1, "Subscriptions"),
    ("AVIVA INSURANCE", -1, "Insurance"),
    ("DIRECT LINE INS", -1, "Insurance"),
    ("EASYJET", -1, "Travel"),
    ("PREMIER INN", -1, "Travel"),
    ("NETFLIX.COM", -1, "Subscriptions"),
    # Germany
    ("REWE Markt GmbH", -1, "Groceries"),
    ("EDEKA CENTER", -1, "Groceries"),
    ("LIDL DIENSTL GMBH", -1, "Groceries"),
    ("ALDI SUED", -1, "Groceries"),
    ("PENNY MARKT", -1, "Groceries"),
    ("NETTO MARKEN-DISCOUNT", -1, "Groceries"),
    ("KAUFLAND", -1, "Groceries"),
    ("dm-drogerie markt", -1, "Health"),
    ("ROSSMANN", -1, "Health"),
    ("Apotheke am Markt", -1, "Health"),
    ("ARAL STATION 1234", -1, "Fuel"),
    ("JET TANKSTELLE", -1, "Fuel"),
    ("DB Vertrieb GmbH", -1, "Transport"),
    ("BVG BERLIN", -1, "Transport"),
    ("Allianz Versicherungs-AG", -1, "Insurance"),
    ("HUK-COBURG", -1, "Insurance"),
    ("Telekom Deutschland GmbH", -1, "Utilities"),
    ("Vodafone GmbH", -1, "Utilities"),
    ("Stadtwerke München", -1, "Utilities"),
    ("Vattenfall Europe Sales", -1, "Utilities"),
    ("Lieferando.de", -1, "Eating out"),
    ("Bäckerei Müller", -1, "Eating out"),
    ("Zalando SE", -1, "Shopping"),
    ("IKEA Deutschland", -1, "Shopping"),
    ("MediaMarkt", -1, "Shopping"),
    ("Amazon EU S.a.r.L.", -1, "Shopping"),
    ("Netflix International B.V.", -1, "Subscriptions"),
    ("Spotify AB", -1, "Subscriptions"),
    ("McFit GmbH", -1, "Health"),
    ("Geldautomat Sparkasse", -1, "Cash"),
    ("Gehalt März 2024", 1, "Salary"),
]  # fmt: skip


def test_bundled_rules_on_obviously_named_merchants() -> None:
    rules = load_rules(default_rules_path())
    wrong = [(text, want, rules.categorise(text, Decimal(sign * 10)))
             for text, sign, want in MERCHANTS if rules.categorise(text, Decimal(sign * 10)) != want]
    accuracy = 1 - len(wrong) / len(MERCHANTS)
    print(f"\nmerchant categories right: {len(MERCHANTS) - len(wrong)}/{len(MERCHANTS)} = {accuracy:.1%}")
    assert len(MERCHANTS) >= 60
    assert accuracy >= 0.9, wrong
    assert not wrong  # the aim: every merchant on the list


def test_normalisation_drops_processor_prefixes_and_punctuation() -> None:
    assert normalise("SQ *BLUE BOTTLE COFFEE") == "blue bottle coffee"
    assert normalise("TST* SHAKE SHACK 1234") == "shake shack 1234"
    assert normalise("UBER   *EATS PENDING") == "uber eats pending"
    assert normalise("PAYPAL *SPOTIFY") == "spotify"


# --------------------------------------------------------------------------------------------
# Layers
# --------------------------------------------------------------------------------------------

STATEMENT = "Date,Description,Amount\n2024-03-01,CORNER SHOP 12,-3.00\n2024-03-02,TESCO STORES,-12.00\n" \
            "2024-03-03,NETFLIX.COM,-9.99\n"


def categories(tmp_path: Path, **opts: object) -> list[str]:
    src = tmp_path / "src"
    src.mkdir(exist_ok=True)
    (src / "s.csv").write_text(STATEMENT, encoding="utf-8")
    result = run_task("statements", src / "s.csv", src, tmp_path / "out", **opts)
    with open(tmp_path / "out" / result["output"], newline="", encoding="utf-8") as fh:
        return [r["category"] for r in csv.DictReader(fh)]


def test_user_rules_in_the_config_folder_are_layered_over_the_bundled(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = tmp_path / "cfg" / "config.toml"
    monkeypatch.setenv("BATCHDESK_CONFIG", str(config))
    assert user_rules_path() == tmp_path / "cfg" / "rules.toml"
    assert categories(tmp_path) == ["Uncategorised", "Groceries", "Subscriptions"]
    config.parent.mkdir()
    (config.parent / "rules.toml").write_text('[categories]\n"Corner shop" = ["corner shop"]\n'
                                              '"Entertainment" = ["netflix"]\n', encoding="utf-8")
    # the user's rules win; the bundled ones still categorise the rest
    assert categories(tmp_path) == ["Corner shop", "Groceries", "Entertainment"]
    # editing a rule and running again is how a user corrects a category
    (config.parent / "rules.toml").write_text('[categories]\n"Corner shop" = ["corner shop"]\n', encoding="utf-8")
    assert categories(tmp_path) == ["Corner shop", "Groceries", "Subscriptions"]


def test_rules_option_is_one_more_layer_on_top(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    user = tmp_path / "user-rules.toml"
    user.write_text('default = "To sort"\n[categories]\n"Corner shop" = ["corner shop"]\n', encoding="utf-8")
    monkeypatch.setenv("BATCHDESK_RULES", str(user))
    top = tmp_path / "src" / "top.toml"
    top.parent.mkdir()
    top.write_text('[categories]\n"Treats" = ["corner shop 12"]\n', encoding="utf-8")
    assert categories(tmp_path, rules="top.toml") == ["Treats", "Groceries", "Subscriptions"]
    rules = rules_for("top.toml", top.parent)
    assert rules.layers == ("option", "user", "bundled") and rules.default == "To sort"
    (tmp_path / "src" / "alone.toml").write_text('inherit = false\n[categories]\n"Treats" = ["corner"]\n',
                                                 encoding="utf-8")
    assert categories(tmp_path, rules="alone.toml") == ["Treats", "Uncategorised", "Uncategorised"]
    monkeypatch.setenv("BATCHDESK_RULES", "")  # switched off
    assert rules_for("", None).layers == ("bundled",)


def test_a_broken_user_rules_file_is_refused_at_submit(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    user = tmp_path / "rules.toml"
    user.write_text("[categories\n", encoding="utf-8")
    monkeypatch.setenv("BATCHDESK_RULES", str(user))
    with pytest.raises(TaskError, match=r"rules\.toml is not valid TOML"):
        registry.get("statements").parse_options({})


def test_uncategorised_transactions_are_listed_in_the_summary(tmp_path: Path) -> None:
    import json

    try:
        from conftest_tasks import run_job
    except ImportError:
        from tests.conftest_tasks import run_job
    src = tmp_path / "src"
    src.mkdir()
    (src / "s.csv").write_text(STATEMENT + "2024-03-04,MYSTERY CREDIT,5.00\n", encoding="utf-8")
    run_job("statements", src, tmp_path / "out", currency="GBP")
    summary = json.loads((tmp_path / "out" / "statements_summary.json").read_text(encoding="utf-8"))
    assert summary["uncategorised_count"] == 2
    assert [(u["description"], u["amount"]) for u in summary["uncategorised"]] == [
        ("CORNER SHOP 12", "-3.00"), ("MYSTERY CREDIT", "5.00")]
