"""The index task on real files of every format, with the real bundled model and a real SQLite store:
chunks keep their pages, metadata is extracted, unchanged files embed nothing, changed files replace
their chunks, files that left the folder leave the index, collections stay apart, models never mix."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest

from conftest_tasks import run_job, run_task
from data import index_snapshot, index_store
from data.models import IndexChunk, IndexDocument
from index_corpus import DOCUMENTS, write_docx, write_html, write_md, write_pdf
from workers import embedders, registry
from workers.registry import JobContext, TaskError
from workers.tasks.index import finish


def _doc(rel: str) -> tuple[str, str, str, str, list[tuple[str, str]]]:
    return next(d for d in DOCUMENTS if d[0] == rel)


def _write(root: Path, rel: str) -> Path:
    _, title, author, created, sections = _doc(rel)
    path = root / Path(rel).name
    path.parent.mkdir(parents=True, exist_ok=True)
    {".pdf": write_pdf, ".docx": write_docx, ".html": write_html, ".md": write_md}[path.suffix](
        path, title, author, created, sections)
    return path


def _document(path: Path, collection: str = "default") -> IndexDocument:
    return IndexDocument.select().join(index_store.IndexCollection).where(
        (IndexDocument.path == str(path)) & (index_store.IndexCollection.name == collection)).get()


def test_every_format_is_indexed_with_its_metadata_pages_and_vectors(store, tmp_path):
    root = tmp_path / "src"
    files = {rel: _write(root, rel) for rel in ("bread/sourdough-guide.pdf", "hobby/bicycle-restoration.docx",
                                               "garden/tomato-blight.html", "dev/git-workflow.md")}
    for path in files.values():
        result = run_task("index", path, root, tmp_path / "out")
        assert result["chunks"] >= 1 and result["embedded"] == result["chunks"] and result["lang"] == "en"
    pdf = _document(files["bread/sourdough-guide.pdf"])
    assert (pdf.format, pdf.pages, pdf.title, pdf.author) == ("pdf", 3, "Baking with a sourdough starter",
                                                              "Marta Keller")
    docx = _document(files["hobby/bicycle-restoration.docx"])
    assert (docx.format, docx.author, docx.created[:10]) == ("docx", "Tom Becker", "2018-07-11")
    assert _document(files["garden/tomato-blight.html"]).title == "Tomato blight"
    assert _document(files["dev/git-workflow.md"]).format == "markdown"
    pages = {c.page for c in IndexChunk.select().where(IndexChunk.document == pdf.id)}
    assert pages and pages <= {1, 2, 3}
    proof = IndexChunk.select().where((IndexChunk.document == pdf.id) & IndexChunk.text.contains("floured finger"))
    assert [c.page for c in proof] == [2], "the chunk about proofing is on page 2"
    vector = np.frombuffer(proof.get().vector, dtype="<f2")
    assert vector.shape == (256,) and abs(float(np.linalg.norm(vector.astype(np.float32))) - 1) < 0.01
    info = index_store.collections()[0]
    assert (info.name, info.model, info.dim, info.documents) == ("default", "minilm-static-256", 256, 4)
    assert info.chunks == IndexChunk.select().count()


def test_an_unchanged_file_embeds_nothing_and_a_changed_one_replaces_its_chunks(store, tmp_path):
    root = tmp_path / "src"
    path = _write(root, "health/first-aid-burns.md")
    first = run_task("index", path, root, tmp_path / "out")
    assert run_task("index", path, root, tmp_path / "out") == {
        "collection": "default", "chunks": first["chunks"], "embedded": 0, "unchanged": True}
    os.utime(path, (1, 1))  # a new mtime alone is no change: the content hash decides
    assert run_task("index", path, root, tmp_path / "out")["embedded"] == 0
    path.write_text("# Burns\n\nCompletely new advice about sunburn and aloe vera.\n", encoding="utf-8")
    changed = run_task("index", path, root, tmp_path / "out")
    assert changed["embedded"] == changed["chunks"] == 1
    texts = [c.text for c in IndexChunk.select()]
    assert len(texts) == 1 and "aloe vera" in texts[0] and not any("cling film" in t for t in texts)
    assert index_store.collections()[0].documents == 1


def test_a_file_that_became_unreadable_leaves_the_index(store, tmp_path):
    root = tmp_path / "src"
    path = _write(root, "it/backup-procedure.pdf")
    run_task("index", path, root, tmp_path / "out")
    path.write_bytes(b"%PDF-1.4 this is no longer a PDF")
    with pytest.raises(registry.ItemError, match="not a valid PDF"):
        run_task("index", path, root, tmp_path / "out")
    assert IndexDocument.select().count() == 0 and IndexChunk.select().count() == 0


def test_collections_are_independent_and_models_never_mix(store, tmp_path):
    root = tmp_path / "src"
    path = _write(root, "energy/solar-panels.md")
    run_task("index", path, root, tmp_path / "out", collection="a")
    run_task("index", path, root, tmp_path / "out", collection="b")
    assert [(c.name, c.documents) for c in index_store.collections()] == [("a", 1), ("b", 1)]
    with pytest.raises(TaskError, match="holds vectors of model 'minilm-static-256'"):
        registry.get("index").parse_options({"collection": "a", "model": "wordllama"})
    with pytest.raises(TaskError, match="unknown model 'nope'"):
        registry.get("index").parse_options({"model": "nope"})
    with pytest.raises(TaskError, match="collection"):
        registry.get("index").parse_options({"collection": "a/b"})


def test_files_gone_from_the_folder_leave_the_index_but_nothing_else_does(store, tmp_path):
    root, elsewhere = tmp_path / "src", tmp_path / "other"
    keep, gone = _write(root, "admin/passport-renewal.md"), _write(root, "garden/composting.md")
    outside = _write(elsewhere, "music/ukulele-chords.html")
    run_job("index", root, tmp_path / "out")
    run_task("index", outside, elsewhere, tmp_path / "out")
    run_task("index", gone, root, tmp_path / "out", collection="other")
    gone.unlink()
    rows = run_job("index", root, tmp_path / "out")
    assert [r[0] for r in rows] == ["passport-renewal.md"]
    assert {d.path for d in IndexDocument.select().join(index_store.IndexCollection).where(
        index_store.IndexCollection.name == "default")} == {str(keep), str(outside)}
    assert index_store.stored_document("other", str(gone)) is not None, "another collection is left alone"
    summary = json.loads((tmp_path / "out" / finish.SUMMARY_FILE).read_text())
    assert summary["removed"] == [str(gone)] and summary["collection_documents"] == 2
    assert summary["job"] == {"documents": 1, "unchanged": 1, "embedded": 0, "failed": 0}
    assert summary["snapshot_rows"] == index_store.collections()[0].chunks


def test_a_stale_snapshot_is_topped_up_to_what_a_rebuild_gives(store, tmp_path):
    root = tmp_path / "src"
    paths = [_write(root, rel) for rel in ("farm/beekeeping-spring.pdf", "science/volcanoes.html",
                                           "sport/marathon-taper.html")]
    for path in paths:
        run_task("index", path, root, tmp_path / "out")
    directory = index_snapshot.index_dir(tmp_path / "store.sqlite3")
    info = index_store.collections()[0]
    first = index_snapshot.refresh(directory, info.id, info.dim)
    assert first.rows == info.chunks and index_snapshot.load(directory, info.id).generation == first.generation
    paths[1].write_text("<html><body><p>Volcanoes, rewritten.</p></body></html>")
    run_task("index", paths[1], root, tmp_path / "out")
    index_store.remove_documents(info.id, [_document(paths[2]).id])
    topped = index_snapshot.refresh(directory, info.id, info.dim, index_snapshot.load(directory, info.id))
    rebuilt = index_snapshot.refresh(tmp_path / "fresh", info.id, info.dim)
    order, again = np.argsort(topped.chunk_ids), np.argsort(rebuilt.chunk_ids)
    assert topped.generation == rebuilt.generation == index_store.generation_of(info.id)
    assert np.array_equal(topped.chunk_ids[order], rebuilt.chunk_ids[again])
    assert np.array_equal(np.asarray(topped.vectors)[order], np.asarray(rebuilt.vectors)[again])
    assert len(list(directory.joinpath(str(info.id)).glob("*.vectors.f32"))) == 1, "old files are cleaned up"


def test_preload_loads_the_collections_model_once(store, tmp_path):
    root = tmp_path / "src"
    run_task("index", _write(root, "games/sicilian-defence.docx"), root, tmp_path / "out", collection="chess")
    spec = registry.get("index")
    spec.preload({"collection": "chess", "model": ""})
    assert embedders.loaded("minilm-static-256")
    assert embedders.load() is embedders.load("default"), "one model per process"


def test_finalize_of_a_job_without_documents_writes_an_empty_summary(store, tmp_path):
    written = finish.finish_index(JobContext(job_id=1, options={"collection": "empty"}, output_dir=tmp_path / "out",
                                             source_root=tmp_path, results=lambda: iter(())))
    summary = json.loads(Path(written).read_text())
    assert summary["collection_documents"] == 0 and summary["removed"] == [] and summary["snapshot_rows"] is None
