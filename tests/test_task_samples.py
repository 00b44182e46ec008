"""data/samples/ is exactly what scripts/make_samples.py makes, stays small and covers the quickstart."""

from __future__ import annotations

from pathlib import Path

try:
    from conftest_tasks import SAMPLES, make_samples_module, run_job
except ImportError:  # tests/ became a package
    from tests.conftest_tasks import SAMPLES, make_samples_module, run_job


def test_generator_is_deterministic_and_matches_the_committed_samples(tmp_path: Path) -> None:
    ms = make_samples_module()
    first, second = ms.sample_files(), ms.sample_files()
    assert first == second
    assert ms.main(["--out", str(tmp_path / "a")]) == 0
    assert ms.main(["--out", str(tmp_path / "a"), "--check"]) == 0
    assert ms.main(["--check"]) == 0, "data/samples is stale: run python scripts/make_samples.py"
    (tmp_path / "a" / "README.md").write_text("changed")
    assert ms.main(["--out", str(tmp_path / "a"), "--check"]) == 1


def test_samples_are_small_and_cover_the_required_kinds() -> None:
    files = [p for p in SAMPLES.rglob("*") if p.is_file()]
    assert sum(p.stat().st_size for p in files) < 300 * 1024
    rels = {p.relative_to(SAMPLES).as_posix() for p in files}
    suffixes = {Path(r).suffix for r in rels}
    assert {".pdf", ".docx", ".html", ".md", ".txt", ".json", ".csv"} <= suffixes
    assert sum(r.endswith(".pdf") for r in rels) >= 2
    assert any(r.count("/") >= 3 for r in rels)  # a nested subfolder
    assert any(" " in r and not r.isascii() for r in rels)  # spaces and unicode in a name
    assert len([r for r in rels if r.startswith("statements/")]) >= 3


def test_quickstart_tasks_succeed_on_every_sample(tmp_path: Path) -> None:
    for task, root in (("checksum", SAMPLES), ("extract-text", SAMPLES), ("statements", SAMPLES / "statements")):
        rows = run_job(task, root, tmp_path / task)
        failed = [(rel, err) for rel, status, _r, err in rows if status != "done"]
        assert not failed, (task, failed)
