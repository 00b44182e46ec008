"""Helpers for the task tests: call tasks exactly as the batch runner does (not a conftest: no fixtures
are injected; import the functions)."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

from workers import registry
from workers.registry import ItemError, JobContext, TaskContext


def run_task(name: str, path: Path, root: Path, out: Path, **raw: Any) -> dict:
    """``spec.parse_options(raw)`` (as a submit does) then ``spec.func(abs_path, TaskContext(...))``, like the
    runner."""
    spec = registry.get(name)
    opts = spec.parse_options(dict(raw), source_root=Path(root))
    rel = Path(path).resolve().relative_to(Path(root).resolve()).as_posix()
    ctx = TaskContext(options=opts, output_dir=Path(out), rel_path=rel, source_root=Path(root))
    return spec.func(Path(path).resolve(), ctx)


def run_job(name: str, root: Path, out: Path, files: Iterable[Path] | None = None, **raw: Any) -> list[tuple]:
    """Run a task over files (default: every file under root, sorted) and then its finalize hook.

    Returns ``(rel_path, status, result, error)`` rows as the runner would record them.
    """
    spec = registry.get(name)
    root = Path(root).resolve()
    opts = spec.parse_options(raw, source_root=root)
    paths = sorted(files) if files is not None else sorted(p for p in root.rglob("*") if p.is_file())
    rows = []
    for p in paths:
        rel = Path(p).resolve().relative_to(root).as_posix()
        try:
            ctx = TaskContext(options=opts, output_dir=Path(out), rel_path=rel, source_root=root)
            result = spec.func(Path(p).resolve(), ctx)
            rows.append((rel, "done", result, None))
        except ItemError as exc:
            rows.append((rel, "failed", None, str(exc)))
    if spec.finalize:
        spec.finalize(JobContext(job_id=1, options=opts, output_dir=Path(out), source_root=root,
                                 results=lambda: iter(rows)))
    return rows


ROOT = Path(__file__).resolve().parents[1]
SAMPLES = ROOT / "data" / "samples"


def make_samples_module():
    """``scripts/make_samples.py`` as a module (its make_pdf / make_docx build test documents)."""
    import importlib.util
    import sys

    name = "batchdesk_make_samples"
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, ROOT / "scripts" / "make_samples.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module
