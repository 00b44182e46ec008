#!/usr/bin/env python3
"""How much of a PDF's text extract-text finds, against poppler's ``pdftotext``, and how fast.

    python bench/bench_text_quality.py CORPUS_DIR               # every *.pdf under CORPUS_DIR
    python bench/bench_text_quality.py CORPUS_DIR --engines batchdesk,pdfium,pypdf --worst 20
    python bench/bench_text_quality.py CORPUS_DIR --json /tmp/text-quality.json

The reference is ``pdftotext -enc UTF-8 FILE -`` (Debian: poppler-utils). Engines:

* ``batchdesk``: ``workers.tasks.extract_text.extract_document`` (what the task and the index read);
* ``pdfium``: pypdfium2's plain page text (the engine alone, none of extract-text's work);
* ``pypdf``: pypdf's ``extract_text`` (what extract-text used before; only if pypdf is installed).

Words: NFKC, case-folded runs of letters and digits; "CJK by char" counts every Chinese, Japanese or
Korean character as a word (those scripts write no spaces). A file's recall is the share of the
reference's words (as a multiset) the engine's text has; the weighted recall weights files by
their reference word count. Files pdftotext cannot read, or finds no words in, are left out of
recall. ``failed``: the engine raised on a file pdftotext finds words in; ``crashed``: the engine's process
died or ran over ``--timeout`` on a file (the file is then skipped and the engine goes on in a new
process). Times are the sum of per-file times (pdftotext: one process per file, as it is used).
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import re
import shutil
import statistics
import subprocess
import sys
import time
import unicodedata
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

ENGINES = ("batchdesk", "pdfium", "pypdf")
_WORD = re.compile(r"[^\W_]+")
_CJK = re.compile(r"[\u2e80-\u9fff\uac00-\ud7af\uf900-\ufaff\uff66-\uff9f]|[^\W_]+")


@dataclass
class Outcome:
    """One engine on one file."""

    ok: bool
    text: str = ""
    error: str = ""
    seconds: float = 0.0
    warnings: list[str] = field(default_factory=list)


# -- engines (run in a child process) -------------------------------------------------------------
def _batchdesk(path: Path) -> tuple[str, list[str]]:
    from workers.tasks.extract_text import extract_document

    _fmt, extracted = extract_document(path, "auto", 4096)
    return extracted.text, extracted.warnings


def _pdfium(path: Path) -> tuple[str, list[str]]:
    import pypdfium2 as pdfium  # type: ignore[import-untyped]

    doc = pdfium.PdfDocument(path)
    try:
        texts = []
        for index in range(len(doc)):
            page = doc[index]
            textpage = page.get_textpage()
            texts.append(textpage.get_text_range())
            textpage.close()
            page.close()
        return "\n".join(texts), []
    finally:
        doc.close()


def _pypdf(path: Path) -> tuple[str, list[str]]:
    import logging

    from pypdf import PdfReader  # type: ignore[import-not-found,unused-ignore]

    logging.getLogger("pypdf").setLevel(logging.ERROR)
    reader = PdfReader(path)
    if reader.is_encrypted:
        reader.decrypt("")
    return "\n".join(page.extract_text() or "" for page in reader.pages), []


_READERS: dict[str, Callable[[Path], tuple[str, list[str]]]] = {
    "batchdesk": _batchdesk, "pdfium": _pdfium, "pypdf": _pypdf,
}


def _child(engine: str, paths: list[str], conn: Connection) -> None:
    """Read each file with the engine and send an Outcome per file, in order."""
    read = _READERS[engine]
    for name in paths:
        started = time.perf_counter()
        try:
            text, warnings = read(Path(name))
            outcome = Outcome(True, text, seconds=time.perf_counter() - started, warnings=warnings)
        except Exception as exc:  # what the engine raises is what we measure
            outcome = Outcome(False, error=f"{type(exc).__name__}: {exc}"[:200], seconds=time.perf_counter() - started)
        conn.send(outcome)
    conn.close()


def run_engine(engine: str, paths: list[Path], timeout: float) -> list[Outcome]:
    """Every file through the engine in a child process; a file that kills or hangs the child is
    recorded as crashed and the rest go on in a new child."""
    ctx = multiprocessing.get_context("spawn")
    outcomes: list[Outcome] = []
    while len(outcomes) < len(paths):
        rest = [str(p) for p in paths[len(outcomes):]]
        parent, child_end = ctx.Pipe(duplex=False)
        proc = ctx.Process(target=_child, args=(engine, rest, child_end), daemon=True)
        proc.start()
        child_end.close()
        try:
            _collect(parent, proc, len(rest), timeout, outcomes)
        finally:
            if proc.is_alive():
                proc.kill()
            proc.join()
            parent.close()
    return outcomes


def _collect(conn: Connection, proc: Any, count: int, timeout: float, outcomes: list[Outcome]) -> None:
    for _ in range(count):
        if not conn.poll(timeout + (30 if not outcomes else 0)):  # the first file pays for imports
            outcomes.append(Outcome(False, error=f"crashed: no answer in {timeout:g} s", seconds=timeout))
            return
        try:
            outcomes.append(conn.recv())
        except EOFError:
            proc.join(5)
            outcomes.append(Outcome(False, error=f"crashed: the process died (exit code {proc.exitcode})"))
            return


def pdftotext(paths: list[Path], timeout: float) -> list[Outcome]:
    outcomes = []
    for path in paths:
        started = time.perf_counter()
        try:
            done = subprocess.run(["pdftotext", "-enc", "UTF-8", str(path), "-"], capture_output=True,
                                  timeout=timeout, check=False)
            lines = done.stderr.decode("utf-8", "replace").strip().splitlines()
            error = "" if done.returncode == 0 else (lines[-1] if lines else f"exit code {done.returncode}")
            text = done.stdout.decode("utf-8", "replace")
            outcomes.append(Outcome(done.returncode == 0, text, error, time.perf_counter() - started))
        except subprocess.TimeoutExpired:
            outcomes.append(Outcome(False, error="timeout", seconds=timeout))
    return outcomes


# -- scoring --------------------------------------------------------------------------------------
def words(text: str, cjk_chars: bool = False) -> Counter[str]:
    pattern = _CJK if cjk_chars else _WORD
    return Counter(pattern.findall(unicodedata.normalize("NFKC", text).casefold()))


def recall(reference: Counter[str], found: Counter[str]) -> float:
    total = sum(reference.values())
    return sum(min(count, found[word]) for word, count in reference.items()) / total


@dataclass
class Score:
    """An engine's numbers over the corpus."""

    weighted: float
    median: float
    p10: float
    weighted_cjk: float
    failed: int
    crashed: int
    warned: int
    seconds: float
    per_file: list[tuple[float, int, int]]  # (recall, reference words, file index)


def score(ref: list[Outcome], got: list[Outcome]) -> Score:
    rows, rows_cjk = [], []
    for index, (r, g) in enumerate(zip(ref, got, strict=True)):
        if not r.ok:
            continue
        reference, reference_cjk = words(r.text), words(r.text, True)
        if not reference:
            continue
        text = g.text if g.ok else ""
        rows.append((recall(reference, words(text)), sum(reference.values()), index))
        rows_cjk.append((recall(reference_cjk, words(text, True)), sum(reference_cjk.values())))
    recalls = sorted(row[0] for row in rows)
    return Score(
        weighted=_weighted([(r, n) for r, n, _ in rows]),
        median=statistics.median(recalls) if recalls else 0.0,
        p10=recalls[len(recalls) // 10] if recalls else 0.0,
        weighted_cjk=_weighted(rows_cjk),
        failed=sum(1 for _, _, index in rows if not got[index].ok and not got[index].error.startswith("crashed")),
        crashed=sum(1 for g in got if g.error.startswith("crashed")),
        warned=sum(1 for g in got if g.ok and g.warnings),
        seconds=sum(g.seconds for g in got),
        per_file=rows,
    )


def _weighted(rows: list[tuple[float, int]]) -> float:
    total = sum(n for _, n in rows)
    return sum(r * n for r, n in rows) / total if total else 0.0


# -- report ---------------------------------------------------------------------------------------
def report(root: Path, paths: list[Path], ref: list[Outcome], scores: dict[str, Score], worst: int) -> None:
    readable = [r for r in ref if r.ok and words(r.text)]
    total_words = sum(sum(words(r.text).values()) for r in readable)
    print(f"corpus {root}: {len(paths)} PDFs; pdftotext reads {sum(r.ok for r in ref)}, "
          f"finds words in {len(readable)} ({total_words:,} words)")
    print(f"{'engine':<10} {'recall':>7} {'median':>7} {'p10':>6} {'CJK by char':>11} {'failed':>7} "
          f"{'crashed':>8} {'warned':>7} {'time':>8} {'vs pdftotext':>13}")
    ref_seconds = sum(r.seconds for r in ref)
    print(f"{'pdftotext':<10} {'(ref)':>7} {'':>7} {'':>6} {'':>11} {len(ref) - sum(r.ok for r in ref):>7} "
          f"{'':>8} {'':>7} {ref_seconds:>7.1f}s {'1.00 x':>13}")
    for engine, s in scores.items():
        speed = f"{ref_seconds / s.seconds:.2f} x" if s.seconds else "-"
        print(f"{engine:<10} {s.weighted:>7.3f} {s.median:>7.3f} {s.p10:>6.2f} {s.weighted_cjk:>11.3f} "
              f"{s.failed:>7} {s.crashed:>8} {s.warned:>7} {s.seconds:>7.1f}s {speed:>13}")
    for engine, s in scores.items():
        lost = sorted(s.per_file, key=lambda row: (row[0] - 1) * row[1])[:worst]
        if worst and lost:
            print(f"\n{engine}: the files losing most words (recall, reference words, file)")
            for rec, n, index in lost:
                print(f"  {rec:6.3f} {n:7d}  {paths[index].relative_to(root)}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("corpus", type=Path, help="folder of PDFs (searched recursively)")
    parser.add_argument("--engines", default="batchdesk,pdfium,pypdf", help="comma-separated: " + ", ".join(ENGINES))
    parser.add_argument("--timeout", type=float, default=120.0, help="seconds one file may take (default 120)")
    parser.add_argument("--worst", type=int, default=10, help="list this many files losing most words")
    parser.add_argument("--json", type=Path, help="write per-file results here")
    args = parser.parse_args(argv)
    if shutil.which("pdftotext") is None:
        parser.error("pdftotext is needed as the reference (Debian/Ubuntu: apt-get install poppler-utils)")
    paths = sorted(p for p in args.corpus.rglob("*") if p.is_file() and p.suffix.lower() == ".pdf")
    if not paths:
        parser.error(f"no .pdf files under {args.corpus}")
    engines = [e for e in args.engines.split(",") if e]
    unknown = set(engines) - set(ENGINES)
    if unknown:
        parser.error(f"unknown engine(s): {', '.join(sorted(unknown))}")
    if "pypdf" in engines and not _installed("pypdf"):
        print("pypdf is not installed: its row is left out", file=sys.stderr)
        engines.remove("pypdf")
    ref = pdftotext(paths, args.timeout)
    results = {engine: run_engine(engine, paths, args.timeout) for engine in engines}
    scores = {engine: score(ref, got) for engine, got in results.items()}
    report(args.corpus, paths, ref, scores, args.worst)
    if args.json:
        _write_json(args.json, args.corpus, paths, ref, results)
    return 0


def _installed(module: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(module) is not None


def _write_json(target: Path, root: Path, paths: list[Path], ref: list[Outcome],
                results: dict[str, list[Outcome]]) -> None:
    rows = []
    for index, path in enumerate(paths):
        row: dict[str, Any] = {"file": path.relative_to(root).as_posix(), "pdftotext_ok": ref[index].ok}
        reference = words(ref[index].text)
        for engine, got in results.items():
            outcome = got[index]
            row[engine] = {
                "ok": outcome.ok, "error": outcome.error, "seconds": round(outcome.seconds, 4),
                "warnings": outcome.warnings,
                "recall": round(recall(reference, words(outcome.text)), 4) if reference and ref[index].ok else None,
            }
        rows.append(row)
    target.write_text(json.dumps(rows, indent=1, ensure_ascii=False), encoding="utf-8")


if __name__ == "__main__":
    sys.exit(main())
