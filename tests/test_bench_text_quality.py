"""bench/bench_text_quality.py: its word counting and recall, and a run on a small corpus made here
(needs poppler's pdftotext, as the benchmark does)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from bench.bench_text_quality import Outcome, main, recall, score, words
from conftest import require_program

try:
    from pdf_fixtures import lines_pdf
except ImportError:  # tests/ became a package
    from tests.pdf_fixtures import lines_pdf


def test_words_are_nfkc_casefolded_and_recall_counts_each_reference_word_once() -> None:
    found = words("Ｆｕｌｌ-width ﬁne Café CAFÉ 3.50 €")  # NFKC, case-folded
    assert found == {"full": 1, "width": 1, "fine": 1, "café": 2, "3": 1, "50": 1}
    assert words("日本語 text", cjk_chars=True) == {"日": 1, "本": 1, "語": 1, "text": 1}
    assert words("日本語 text") == {"日本語": 1, "text": 1}
    assert recall(words("a a b c"), words("a b b")) == 0.5  # a once of twice, b once, c never


def test_score_leaves_out_what_pdftotext_cannot_read() -> None:
    ref = [Outcome(True, "one two three four"), Outcome(True, "alpha"), Outcome(False, error="bad"), Outcome(True, "")]
    got = [Outcome(True, "one two"), Outcome(False, error="ItemError: broken"), Outcome(True, "x"),
           Outcome(False, error="crashed: the process died (exit code -11)")]
    s = score(ref, got)
    assert (s.weighted, s.median, s.failed, s.crashed) == (pytest.approx(0.4), 0.25, 1, 1)
    assert [n for _, n, _ in s.per_file] == [4, 1]


def test_a_run_on_a_small_corpus(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    require_program(shutil.which("pdftotext"), "poppler-utils")
    (tmp_path / "a.pdf").write_bytes(lines_pdf(["The extraction of infor-", "mation works."]))
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "b.pdf").write_bytes(lines_pdf(["Second file"], ["page two"]))
    (tmp_path / "c.pdf").write_bytes(b"%PDF-1.4\nnot really")
    args = [str(tmp_path), "--engines", "batchdesk,pdfium", "--worst", "2", "--json", str(tmp_path / "r.json")]
    assert main(args) == 0
    out = capsys.readouterr().out
    assert f"corpus {tmp_path}: 3 PDFs; pdftotext reads 2, finds words in 2 (9 words)" in out
    rows = {line.split()[0]: line.split() for line in out.splitlines() if line.startswith(("batchdesk ", "pdfium "))}
    assert rows["batchdesk"][1:4] == ["1.000", "1.000", "1.00"]  # "information" joined, as pdftotext has it
    assert rows["pdfium"][1] == "0.889"  # "infor" "mation": 8 of 9 words
    assert '"file": "sub/b.pdf"' in (tmp_path / "r.json").read_text()
