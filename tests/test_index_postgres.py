"""The index on a real PostgreSQL store: documents, chunks and vectors written, replaced and removed in
transactions, and searched (the snapshot lives in the data dir, built by the searcher)."""

from __future__ import annotations

from pathlib import Path

from batchdesk.search import SearchEngine
from conftest_tasks import run_job, run_task
from data import index_store
from data.models import IndexChunk, IndexDocument
from data.store import open_store
from index_corpus import DOCUMENTS, WRITERS
from test_store_postgres import pg_server, pg_url  # noqa: F401  (the server and a fresh database per test)


def _write(root: Path, rel: str) -> Path:
    _, title, author, created, sections = next(d for d in DOCUMENTS if d[0] == rel)
    path = root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    WRITERS[path.suffix](path, title, author, created, sections)
    return path.resolve()


def test_index_and_search_on_postgres(request, tmp_path):
    url = request.getfixturevalue("pg_url")  # a fresh database on the module's server
    open_store(url)
    root = tmp_path / "src"
    rels = ("bread/sourdough-guide.pdf", "home/tenancy-agreement.docx", "pets/aquarium-cycle.html",
            "admin/passport-renewal.md", "energy/solar-panels.md")
    paths = [_write(root, rel) for rel in rels]
    rows = run_job("index", root, tmp_path / "out")
    assert [r[1] for r in rows] == ["done"] * 5
    assert run_task("index", paths[0], root, tmp_path / "out")["embedded"] == 0
    engine = SearchEngine(url, tmp_path / "data")
    hit = engine.search("how much warning a renter must give the landlord before leaving the flat")[0]
    assert hit.path == str(paths[1]) and hit.format == "docx"
    assert engine.search("how long should the dough rise", limit=1)[0].page == 2
    paths[3].write_text("# Passports\n\nPassport photographs must be taken against a white wall.\n")
    assert run_task("index", paths[3], root, tmp_path / "out")["embedded"] == 1
    paths[4].unlink()
    run_job("index", root, tmp_path / "out")
    assert IndexDocument.select().count() == 4
    assert IndexChunk.select().join(IndexDocument).where(IndexDocument.path == str(paths[4])).count() == 0
    info = index_store.collections()[0]
    assert (info.documents, info.chunks) == (4, IndexChunk.select().count())
    top = engine.search("photographs against a white wall", limit=3)
    assert top[0].path == str(paths[3]) and all(h.path != str(paths[4]) for h in top)
    assert list((tmp_path / "data" / "index").rglob("*.vectors.f32")), "the snapshot is in the data dir"
