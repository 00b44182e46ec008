#!/usr/bin/env python3
"""Index: search quality, indexing throughput, query latency, `batchdesk search` end to end, desk memory.

* quality: the labelled set (tests/index_corpus.py: 20 documents in PDF/DOCX/HTML/MD, 12 near misses,
  100 unrelated PDFs, 20 paraphrased questions) indexed in-process; recall@1/@5 and MRR by document,
  with and without the keyword re-rank, for the bundled model (and WordLlama when installed);
* throughput: the real ``batchdesk run FOLDER --task index`` on 2 workers over the labelled folder
  grown with more unrelated PDFs; documents/s and chunks/s (the job's own duration, end step included);
* memory: the same command over many small Markdown files (``--chunks`` chunks in all); peak RSS of
  the desk and of each worker (bench_memory's sampler);
* latency: synthetic collections of 100,000 and 1,000,000 chunks (random unit vectors, written through
  the store API); the first search (snapshot built), then warm searches in the same process as the
  TUI keeps them (p50/p95), and ``batchdesk search`` as a new process at 100,000 chunks.

    python bench/bench_index.py [--quick] [--only quality,throughput,memory,latency]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench import common
from bench.bench_memory import INTERVAL, MB, TreeSampler
from bench.common import Section, log, table, verdict

sys.path.insert(0, str(common.ROOT / "tests"))
from index_corpus import KEYWORD_QUERIES, QUERIES, write_corpus

P50_TARGET_MS = {100_000: 50, 1_000_000: 300}
CLI_TARGET_S = 1.5
CHUNKS_PER_DOC = 100  # synthetic collections


def _engine_ranks(engine, root: Path, collection: str, hybrid: bool,
                  questions: list[tuple[str, str]]) -> list[int | None]:
    ranks: list[int | None] = []
    for question, target in questions:
        documents: list[str] = []
        for hit in engine.search(question, collection, 20, hybrid=hybrid):
            if hit.path not in documents:
                documents.append(hit.path)
        where = str(root / target)
        ranks.append(documents.index(where) + 1 if where in documents else None)
    return ranks


def quality() -> Section:
    """Recall of the labelled questions per model, with and without the keyword re-rank."""
    from batchdesk.search import SearchEngine
    from data.store import close_store, open_store
    from workers import registry
    from workers.registry import TaskContext

    base = common.scratch("quality")
    root = (base / "docs").resolve()
    paths = write_corpus(root)
    open_store(base / "store.sqlite3")
    spec = registry.get("index")
    models = [("minilm-static-256", "")]
    try:
        import wordllama  # noqa: F401

        models.append(("wordllama l2_supercat (not shipped)", "wordllama"))
    except ImportError:
        pass
    rows = []
    for label, model in models:
        collection = model or "default"
        options = spec.parse_options({"collection": collection, "model": model})
        started = time.perf_counter()
        for path in paths:
            spec.func(str(path), TaskContext(options, base / "out", str(path.relative_to(root)), root))
        took = time.perf_counter() - started
        engine = SearchEngine(base / "store.sqlite3")
        for hybrid in (False, True):
            row = [label, "vector + keyword" if hybrid else "vector"]
            for questions in ([(q, t) for q, t, _ in QUERIES], KEYWORD_QUERIES):
                ranks = _engine_ranks(engine, root, collection, hybrid, questions)
                mrr = sum(1 / r for r in ranks if r) / len(ranks)
                row += [f"{sum(r == 1 for r in ranks)}/{len(ranks)}",
                        f"{sum(bool(r) and r <= 5 for r in ranks)}/{len(ranks)}", f"{mrr:.3f}"]
            rows.append([*row, f"{len(paths) / took:.0f}"])
    close_store()
    return Section("Index: search quality on the labelled set (132 documents)",
                   table(["model", "ranking", "paraphrases @1", "@5", "MRR", "keywords @1", "@5", "MRR",
                          "docs/s (1 process)"], rows),
                   ["paraphrases: 20 questions that say what one document says in other words; keywords: 12 "
                    "searches for a rare word or name one document uses",
                    "recall by document: a question counts when its document is the first (@1) or among the "
                    "first five distinct documents (@5) of its results"])


def _desk_watch(data_dir: Path, sampler: TreeSampler):
    """Sample the background desk `run` starts (a detached process: found through its desk.json) and
    its workers and work-horses."""
    from batchdesk.desk.info import read_desk_info

    def watch(proc: subprocess.Popen, done) -> None:
        pid = None
        while not done.is_set() and proc.poll() is None:
            if pid is None:
                info = read_desk_info(data_dir)
                pid = info.pid if info is not None else None
            if pid is not None:
                sampler.sample(pid)
            done.wait(INTERVAL)

    return watch


def _index_run(folder: Path, expected: int, sampler: TreeSampler) -> common.CliRun:
    data = common.scratch("data")
    run = common.run_cli(folder, task="index", workers=2, data_dir=data, watch=_desk_watch(data, sampler),
                         timeout=7200)
    subprocess.run([sys.executable, "-m", "batchdesk", "--data-dir", str(data), "stop"], capture_output=True,
                   env=common.cli_env(), cwd=str(common.ROOT), check=False, timeout=120)
    common.check_run(run, expected)
    return run


def _peaks(sampler: TreeSampler) -> list[list[str]]:
    return [[p.role, f"{p.rss / MB:.0f}", f"{p.pss / MB:.0f}" if p.pss else "-"]
            for p in sorted(sampler.peaks.values(), key=lambda p: (p.role != "desk", p.role))]


def throughput(fillers: int) -> Section:
    folder = common.scratch("index-docs")
    paths = write_corpus(folder, fillers=fillers)
    sampler = TreeSampler()
    common.wait_quiet()
    log(f"index throughput: {len(paths)} documents, 2 workers")
    run = _index_run(folder, len(paths), sampler)
    chunks = _chunks(run.data_dir)
    seconds = run.summary["duration_s"] if run.summary else run.seconds
    desk = sampler.peaks.get("desk")
    workers = [p.rss for p in sampler.peaks.values() if p.role.startswith("worker-") and "horses" not in p.role]
    rows = [[f"{len(paths)}", f"{chunks:,}", f"{seconds:.1f}", f"{len(paths) / seconds:.1f}",
             f"{chunks / seconds:,.0f}", f"{run.seconds:.1f}", f"{desk.rss / MB:.0f}" if desk else "-",
             f"{max(workers) / MB:.0f}" if workers else "-"]]
    mix = "20 topical documents (5 each PDF, DOCX, HTML, MD), 12 near misses, the rest PDFs of 1-3 pages"
    return Section("Index: throughput of `batchdesk run FOLDER --task index` (2 workers, embedded broker)",
                   table(["documents", "chunks", "job s", "docs/s", "chunks/s", "command s", "desk peak RSS MB",
                          "worker peak RSS MB"], rows),
                   [mix, "job s: from the first batch's start to the end of the end-of-job step"])


def _chunks(data_dir: Path) -> int:
    import sqlite3

    con = sqlite3.connect(data_dir / "batchdesk.sqlite3")
    try:
        return int(con.execute("SELECT COALESCE(SUM(chunks), 0) FROM indexcollection").fetchone()[0])
    finally:
        con.close()


def memory(chunks: int) -> Section:
    """Many small Markdown files: the desk's memory while a large collection is written."""
    folder = common.scratch("index-md")
    per_file = 5
    words = ["ledger", "quarterly", "audit", "sample", "invoice", "vendor", "balance", "ratio", "forecast", "margin"]
    rng = np.random.default_rng(5)
    for i in range(max(1, chunks // per_file)):
        sub = folder / f"{i // 1000:03d}"
        sub.mkdir(exist_ok=True)
        paragraphs = [" ".join(rng.choice(words, 150)) for _ in range(per_file)]
        (sub / f"note-{i:06d}.md").write_text(f"# Note {i}\n\n" + "\n\n".join(paragraphs), encoding="utf-8")
    files = max(1, chunks // per_file)
    sampler = TreeSampler()
    common.wait_quiet()
    log(f"index memory: {files:,} files, about {chunks:,} chunks")
    run = _index_run(folder, files, sampler)
    written = _chunks(run.data_dir)
    return Section(f"Index: memory while indexing {written:,} chunks ({files:,} Markdown files, 2 workers)",
                   table(["process", "peak RSS MB", "peak PSS MB"], _peaks(sampler)),
                   [f"{written / run.summary['duration_s']:,.0f} chunks/s over {run.summary['duration_s']:.0f} s; "
                    f"{sampler.samples} samples"])


def _synthetic(store: Path, chunks: int) -> None:
    """A collection of ``chunks`` random unit vectors (CHUNKS_PER_DOC per document), through the store API."""
    from data import index_store
    from data.store import open_store

    open_store(store)
    rng = np.random.default_rng(11)
    for doc in range(chunks // CHUNKS_PER_DOC):
        vectors = rng.standard_normal((CHUNKS_PER_DOC, 256), dtype=np.float32)
        vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
        half = vectors.astype("<f2")
        rows = [index_store.ChunkRow(i, None, None, None, 0, 80, f"synthetic chunk {i} of document {doc}",
                                     half[i].tobytes()) for i in range(CHUNKS_PER_DOC)]
        record = index_store.DocumentRecord(path=f"/synthetic/{doc:07d}.txt", hash=f"{doc}", size=1, mtime=0.0,
                                            lang="en", format="text", title=f"document {doc}")
        index_store.write_document("default", "minilm-static-256", 256, record, rows)


def latency(sizes: list[int], repeat: int = 30) -> Section:
    from batchdesk.search import SearchEngine
    from data.store import close_store, open_store

    questions = [q for q, _, _ in QUERIES]
    rows = []
    for size in sizes:
        data = common.scratch(f"latency-{size}")
        store = data / "batchdesk.sqlite3"
        started = time.perf_counter()
        _synthetic(store, size)
        log(f"latency: {size:,} chunks written in {time.perf_counter() - started:.0f} s")
        open_store(store)
        engine = SearchEngine(store, data)
        started = time.perf_counter()
        engine.search(questions[0])
        first = time.perf_counter() - started
        times = []
        for i in range(repeat):
            started = time.perf_counter()
            engine.search(questions[i % len(questions)], limit=10)
            times.append((time.perf_counter() - started) * 1000)
        close_store()
        p50, p95 = statistics.median(times), sorted(times)[int(0.95 * (len(times) - 1))]
        cli = _cli_search(data, questions) if size <= 100_000 else None
        target = P50_TARGET_MS.get(size)
        rows.append([f"{size:,}", f"{first:.2f}", f"{p50:.1f}", f"{p95:.1f}",
                     f"< {target} {verdict(p50 < target)}" if target else "-",
                     f"{cli:.2f} ({verdict(cli < CLI_TARGET_S)})" if cli is not None else "-"])
    return Section("Index: query latency (exact search over the cached float32 matrix)",
                   table(["chunks", "first search s (snapshot built)", "warm p50 ms", "warm p95 ms", "p50 target ms",
                          f"`batchdesk search` s (< {CLI_TARGET_S})"], rows),
                   ["warm: the same process searching again (the TUI's search screen); each search embeds the "
                    "question, scores every chunk, re-ranks 50 candidates by keywords and reads them from the store",
                    "`batchdesk search`: a new process (Python start, imports, model load, snapshot mmap), median "
                    "of 3"])


def _cli_search(data: Path, questions: list[str]) -> float:
    times = []
    for question in questions[:3]:
        started = time.perf_counter()
        out = subprocess.run([sys.executable, "-m", "batchdesk", "--data-dir", str(data), "search", question],
                             capture_output=True, text=True, env=common.cli_env(), cwd=str(common.ROOT), check=False)
        times.append(time.perf_counter() - started)
        if out.returncode != 0:
            raise RuntimeError(f"batchdesk search failed: {out.stderr}")
    return statistics.median(times)


def main(argv: list[str] | None = None) -> list[Section]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="smaller sizes")
    parser.add_argument("--only", default="quality,throughput,memory,latency")
    parser.add_argument("--chunks", type=int, default=200_000, help="chunks written in the memory run")
    args = parser.parse_args(argv)
    chosen = args.only.split(",")
    sections = []
    if "quality" in chosen:
        sections.append(quality())
    if "throughput" in chosen:
        sections.append(throughput(100 if args.quick else 468))
    if "memory" in chosen:
        sections.append(memory(common.scaled(args.chunks, args.quick, 1000)))
    if "latency" in chosen:
        sections.append(latency([10_000, 100_000] if args.quick else [100_000, 1_000_000]))
    common.emit(sections)
    return sections


if __name__ == "__main__":
    main()
