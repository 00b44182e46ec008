"""As a user: one folder mixing CSV exports and PDF statements of several banks.

Per file, exactly the right count, debits, credits and first/last dates (expected values computed
here from the rows written, with Decimal); every PDF that states balances reconciles; categories
right on >= 90 % of obviously named merchants; no total of the report mixes currencies.
"""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from datetime import date
from decimal import Decimal
from pathlib import Path

import pytest

from conftest import batchdesk_env, scaled
from test_categories import MERCHANTS
from test_statements_dialects import DIALECTS, figures
from test_statements_pdf import LAYOUTS, expected, gen

try:
    from conftest_tasks import run_job
except ImportError:  # tests/ became a package
    from tests.conftest_tasks import run_job


def mixed_folder(root: Path) -> dict[str, dict[str, object]]:
    """Write the folder; returns rel path -> the figures the item must report."""
    want: dict[str, dict[str, object]] = {}
    for name, (writer, rows, encoding, currency) in DIALECTS.items():
        (root / "csv").mkdir(parents=True, exist_ok=True)
        (root / "csv" / f"{name}.csv").write_bytes(writer(rows).encode(encoding))
        want[f"csv/{name}.csv"] = {**figures(rows), "currency": currency}
    for index, (name, layout) in enumerate(sorted(LAYOUTS.items())):
        txs = gen.transactions(layout.currency, date(2024, 3, 1), 18 + index, seed=100 + index)
        opening = Decimal("2000.00") + index
        (root / "pdf").mkdir(parents=True, exist_ok=True)
        (root / "pdf" / f"{name}.pdf").write_bytes(gen.make_statement(layout, txs, opening))
        figs = expected(txs, opening)
        balances = layout.balance_lines or layout.running_balance
        want[f"pdf/{name}.pdf"] = {**{k: figs[k] for k in ("transactions", "debits", "credits", "first_date",
                                                           "last_date")},
                                   "currency": layout.currency, "balance_check": "ok" if balances else "n/a"}
    merchants = "Date,Description,Amount (USD)\n" + "".join(
        f"2024-03-{1 + i % 28:02d},\"{text}\",{sign * 10}.00\n" for i, (text, sign, _cat) in enumerate(MERCHANTS))
    (root / "merchants.csv").write_text(merchants, encoding="utf-8")
    return want


def test_mixed_folder_per_file_exact(tmp_path: Path) -> None:
    src, out = tmp_path / "src", tmp_path / "out"
    want = mixed_folder(src)
    rows = {rel: (status, result, error) for rel, status, result, error in run_job("statements", src, out)}
    assert {rel: s for rel, (s, _r, _e) in rows.items() if s != "done"} == {}
    exact = 0
    for rel, figs in want.items():
        result = rows[rel][1]
        got = {k: result.get(k) for k in figs}
        assert got == figs, rel
        exact += 1
    print(f"\n{exact}/{len(want)} files exact (count, debits, credits, first/last date, currency, balance check)")

    with open(out / "merchants.csv.transactions.csv", newline="", encoding="utf-8") as fh:
        cats = [r["category"] for r in csv.DictReader(fh)]
    assert len(cats) == len(MERCHANTS), cats
    right = sum(c == want_cat for c, (_t, _s, want_cat) in zip(cats, MERCHANTS, strict=True))
    print(f"merchant categories in the job: {right}/{len(MERCHANTS)}")
    assert right / len(MERCHANTS) >= 0.9

    with open(out / "statements_report.csv", newline="", encoding="utf-8") as fh:
        report = list(csv.DictReader(fh))
    txs = [r for r in report if r["kind"] == "transaction"]
    for total in (r for r in report if r["kind"] == "total"):
        members = [t for t in txs if (t["month"], t["category"], t["currency"]) ==
                   (total["month"], total["category"], total["currency"])
                   and (total["currency"] or t["source"] == total["source"])]
        assert len({t["currency"] for t in members}) == 1  # one currency per total
        assert sum(Decimal(t["amount"]) for t in members) == Decimal(total["amount"])
    statements = {r["source"]: r for r in report if r["kind"] == "statement"}
    assert all(statements[rel]["category"] == "ok" for rel in want if rel.endswith(".pdf")
               and want[rel]["balance_check"] == "ok")


@pytest.mark.slow
def test_mixed_folder_through_the_cli_with_real_workers(tmp_path: Path) -> None:
    src = tmp_path / "src"
    want = mixed_folder(src)
    env = batchdesk_env(BATCHDESK_BROKER="embedded", BATCHDESK_WORKERS="2")
    proc = subprocess.run([sys.executable, "-m", "batchdesk", "--data-dir", str(tmp_path / "data"), "run", str(src),
                           "--task", "statements", "--json"], capture_output=True, text=True, env=env,
                          timeout=scaled(300), check=False)
    assert proc.returncode == 0, proc.stderr
    summary = json.loads(proc.stdout)
    output = Path(summary["output"])
    assert sorted(Path(p).name for p in summary["reports"]) == ["statements_report.csv", "statements_report.xlsx"]
    ui = json.loads((output / "statements_summary.json").read_text(encoding="utf-8"))
    checked = {s["source"]: s for s in ui["statements"]}
    assert set(checked) == set(want) | {"merchants.csv"}
    for rel, figs in want.items():
        assert checked[rel]["transactions"] == figs["transactions"], rel
        assert checked[rel]["first_date"] == figs["first_date"] and checked[rel]["last_date"] == figs["last_date"]
        assert checked[rel]["balance_check"] == figs.get("balance_check", checked[rel]["balance_check"]), rel
    assert not [s for s in ui["statements"] if s["balance_check"] == "mismatch"]
    assert {b["currency"] for b in ui["blocks"]} == {"EUR", "GBP", "USD"}
