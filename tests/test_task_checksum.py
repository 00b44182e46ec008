"""checksum: digests, sizes and types of real files; the duplicates report; the lean hot path."""

from __future__ import annotations

import csv
import gzip
import hashlib
import io
import os
import struct
import zipfile
import zlib
from pathlib import Path

import pytest

from workers import registry
from workers.registry import ItemError, TaskError

try:
    from conftest_tasks import SAMPLES, run_job, run_task
except ImportError:  # tests/ became a package
    from tests.conftest_tasks import SAMPLES, run_job, run_task


def _png() -> bytes:
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    raw = b"\x00\xff\x00\x00"  # one red pixel, filter byte 0
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", struct.pack(">IIBBBBB", 1, 1, 8, 2, 0, 0, 0))
        + chunk(b"IDAT", zlib.compress(raw))
        + chunk(b"IEND", b"")
    )


def _zip(names: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for name, data in names.items():
            zf.writestr(name, data)
    return buf.getvalue()


def _xlsx() -> bytes:
    from openpyxl import Workbook

    wb = Workbook()
    wb.active.append(["a", 1])
    buf = io.BytesIO()
    wb.save(buf)
    return buf.getvalue()


FILES = {
    "doc.pdf": (SAMPLES / "documents" / "invoice-2024-0042.pdf").read_bytes(),
    "doc.docx": (SAMPLES / "documents" / "employee-handbook.docx").read_bytes(),
    "sheet.xlsx": _xlsx(),
    "archive.zip": _zip({"a.txt": b"hello", "b/c.txt": b"world"}),
    "pixel.png": _png(),
    "photo.jpg": b"\xff\xd8\xff\xe0\x00\x10JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00" + bytes(200),
    "anim.gif": b"GIF89a\x01\x00\x01\x00\x80\x00\x00\xff\xff\xff\x00\x00\x00!\xf9\x04\x01\x00\x00\x00\x00,"
                b"\x00\x00\x00\x00\x01\x00\x01\x00\x00\x02\x02D\x01\x00;",
    "data.gz": gzip.compress(b"compressed text\n" * 10, mtime=0),
    "page.html": b"<!DOCTYPE html>\n<html><head><title>x</title></head><body><p>Hi</p></body></html>\n",
    "fragment.htm": b"  \n<div><html lang='en'>odd but html</html></div>",
    "data.json": b'{"a": [1, 2, 3], "b": {"c": "d"}}\n',
    "lines.jsonl": b'{"a": 1}\n{"a": 2}\n',
    "table.csv": b'name,amount,note\n"Smith, J",12.50,"x"\nDoe,3.00,y\nRoe,4.00,z\n',
    "semi.csv": "Datum;Betrag;Text\n01.03.2024;-1,50;Bäcker\n02.03.2024;-2,50;Café\n".encode("cp1252"),
    "notes.txt": "Plain text, with unicode: naïve café.\nSecond line.\n".encode(),
    "utf16.txt": "Grüße aus Köln\nZweite Zeile\n".encode("utf-16"),
    "random.bin": bytes((i * 7919 + 13) % 256 for i in range(5000)),
    "empty.dat": b"",
}
EXPECTED_TYPES = {
    "doc.pdf": "pdf",
    "doc.docx": "docx",
    "sheet.xlsx": "xlsx",
    "archive.zip": "zip",
    "pixel.png": "png",
    "photo.jpg": "jpeg",
    "anim.gif": "gif",
    "data.gz": "gzip",
    "page.html": "html",
    "fragment.htm": "html",
    "data.json": "json",
    "lines.jsonl": "jsonl",
    "table.csv": "csv",
    "semi.csv": "csv",
    "notes.txt": "text",
    "utf16.txt": "text",
    "random.bin": "binary",
    "empty.dat": "empty",
}


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    root = tmp_path / "src"
    for name, data in FILES.items():
        (root / "sub").mkdir(parents=True, exist_ok=True)
        (root / name).write_bytes(data)
    return root


def test_digest_size_and_type_of_real_files(tree: Path, tmp_path: Path) -> None:
    for name, data in FILES.items():
        result = run_task("checksum", tree / name, tree, tmp_path / "out")
        assert result == {
            "sha256": hashlib.sha256(data).hexdigest(),
            "size": len(data),
            "type": EXPECTED_TYPES[name],
        }, name


def test_each_bundled_sample_gets_its_file_type_even_a_csv_with_a_preamble(tmp_path: Path) -> None:
    rows = {rel: result for rel, _s, result, _e in run_job("checksum", SAMPLES, tmp_path / "out")}
    assert rows["documents/quarterly-report-q1-2024.pdf"]["type"] == "pdf"
    assert rows["documents/employee-handbook.docx"]["type"] == "docx"
    assert rows["documents/web/press-release.html"]["type"] == "html"
    assert rows["data/inventory.json"]["type"] == "json"
    assert rows["data/contacts.csv"]["type"] == "csv"
    # preamble lines, quoted thousands and decimal commas do not hide a CSV
    for name in ("uk-current-account-2024-03.csv", "us-checking-2024-03.csv", "de-girokonto-2024-03.csv"):
        assert rows[f"statements/{name}"]["type"] == "csv", name
    assert rows["notes/lagerbestand-cp1252.txt"]["type"] == "text"


@pytest.fixture(params=["readv", "read"])
def read_path(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Run a test through os.readv into the reused buffer, and through the os.read fallback."""
    from workers.tasks import checksum as module

    if request.param == "read":
        monkeypatch.setattr(module, "_readv", None)
    elif module._readv is None:
        pytest.skip("no os.readv on this platform")
    return request.param


@pytest.mark.parametrize("size", [0, 1, (1 << 16) - 1, 1 << 16, (1 << 20) - 1, 1 << 20, (1 << 20) + 1,
                                  3 * (1 << 20) + 12345])
def test_any_size_is_hashed_exactly(tmp_path: Path, size: int, read_path: str) -> None:
    data = (b"0123456789abcdef" * (size // 16 + 1))[:size]
    path = tmp_path / "big.bin"
    path.write_bytes(data)
    result = run_task("checksum", path, tmp_path, tmp_path / "out")
    assert result["sha256"] == hashlib.sha256(data).hexdigest()
    assert result["size"] == size
    assert result["type"] == ("empty" if size == 0 else "text")


def test_reused_buffer_never_leaks_between_files(tmp_path: Path, read_path: str) -> None:
    big, small = tmp_path / "big.bin", tmp_path / "small.txt"
    big.write_bytes(b"\x00" * 300_000)
    small.write_bytes(b"tiny")
    assert run_task("checksum", big, tmp_path, tmp_path / "o")["type"] == "binary"
    assert run_task("checksum", small, tmp_path, tmp_path / "o") == {
        "sha256": hashlib.sha256(b"tiny").hexdigest(),
        "size": 4,
        "type": "text",
    }


def test_small_file_costs_one_open_one_read_and_no_stat(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, read_path: str
) -> None:
    from workers.tasks import checksum as module

    path = tmp_path / "small.bin"
    path.write_bytes(os.urandom(8192))
    spec = registry.get("checksum")
    ctx = registry.TaskContext(options=spec.parse_options({}), output_dir=tmp_path / "o", rel_path="small.bin",
                               source_root=tmp_path)
    calls: list[str] = []

    def counting(name, real):
        def wrapper(*args, **kwargs):
            calls.append(name)
            return real(*args, **kwargs)

        return wrapper

    if module._readv is not None:
        monkeypatch.setattr(module, "_readv", counting("read", module._readv))
    monkeypatch.setattr(os, "read", counting("read", os.read))
    monkeypatch.setattr(os, "open", counting("open", os.open))
    for name in ("stat", "fstat", "lstat"):
        monkeypatch.setattr(os, name, counting(name, getattr(os, name)))
    result = spec.func(path, ctx)
    monkeypatch.undo()
    assert calls == ["open", "read"]
    assert result["size"] == 8192 and result["type"] == "binary"
    assert result["sha256"] == hashlib.sha256(path.read_bytes()).hexdigest()
    assert not (tmp_path / "o").exists()  # the per-item path writes nothing


def test_unreadable_inputs_fail_cleanly(tmp_path: Path) -> None:
    with pytest.raises(ItemError, match="cannot read file"):
        run_task("checksum", tmp_path / "missing.txt", tmp_path, tmp_path / "out")
    (tmp_path / "adir").mkdir()
    with pytest.raises(ItemError, match="cannot read file"):
        run_task("checksum", tmp_path / "adir", tmp_path, tmp_path / "out")


def test_duplicates_report_groups_copies_biggest_first_without_empty_or_unique_files(tmp_path: Path) -> None:
    root = tmp_path / "src"
    (root / "a" / "deep").mkdir(parents=True)
    (root / "b").mkdir()
    big = b"B" * 5000
    (root / "a" / "one.txt").write_bytes(b"same text\n")
    (root / "b" / "one copy.txt").write_bytes(b"same text\n")
    (root / "a" / "deep" / "one again.txt").write_bytes(b"same text\n")
    (root / "a" / "big.bin").write_bytes(big)
    (root / "b" / "big.bin").write_bytes(big)
    (root / "unique.txt").write_bytes(b"only me\n")
    (root / "empty1").write_bytes(b"")
    (root / "empty2").write_bytes(b"")
    out = tmp_path / "out"
    rows = run_job("checksum", root, out)
    assert all(status == "done" for _r, status, _res, _e in rows)
    with open(out / "duplicates.csv", newline="", encoding="utf-8") as fh:
        report = list(csv.DictReader(fh))
    sha_text = hashlib.sha256(b"same text\n").hexdigest()
    sha_big = hashlib.sha256(big).hexdigest()
    assert [(r["group"], r["sha256"], r["size"], r["copies"], r["path"]) for r in report] == [
        ("1", sha_big, "5000", "2", "a/big.bin"),
        ("1", sha_big, "5000", "2", "b/big.bin"),
        ("2", sha_text, "10", "3", "a/deep/one again.txt"),
        ("2", sha_text, "10", "3", "a/one.txt"),
        ("2", sha_text, "10", "3", "b/one copy.txt"),
    ]  # biggest first; empty files are not reported; unique.txt is not a duplicate


def test_duplicates_ignores_failed_items_and_can_be_switched_off(tmp_path: Path) -> None:
    spec = registry.get("checksum")
    sha = "ab" * 32
    rows = [
        ("x.txt", "done", {"sha256": sha, "size": 3, "type": "text"}, None),
        ("y.txt", "failed", None, "cannot read file"),
        ("z.txt", "done", {"sha256": sha, "size": 3, "type": "text"}, None),
        ("w.txt", "cancelled", None, None),
    ]
    out = tmp_path / "out"
    spec.finalize(registry.JobContext(7, spec.parse_options({}), out, tmp_path, lambda: iter(rows)))
    lines = (out / "duplicates.csv").read_text(encoding="utf-8").splitlines()
    assert lines == ["group,sha256,size,copies,path", f"1,{sha},3,2,x.txt", f"1,{sha},3,2,z.txt"]

    off = tmp_path / "off"
    options = spec.parse_options({"duplicates": "false"})
    spec.finalize(registry.JobContext(8, options, off, tmp_path, lambda: iter(rows)))
    assert not (off / "duplicates.csv").exists()
    raw = tmp_path / "raw"  # options as a config file or an older store might hold them: unparsed text
    spec.finalize(registry.JobContext(9, {"duplicates": "false"}, raw, tmp_path, lambda: iter(rows)))
    assert not (raw / "duplicates.csv").exists()
    spec.finalize(registry.JobContext(10, {}, raw, tmp_path, lambda: iter(rows)))
    assert (raw / "duplicates.csv").exists()


def test_checksum_has_one_option_duplicates_true_by_default() -> None:
    spec = registry.get("checksum")
    assert [o.name for o in spec.options] == ["duplicates"]
    assert spec.parse_options({}) == {"duplicates": True}
    assert spec.parse_options({"duplicates": "no"}) == {"duplicates": False}
    with pytest.raises(TaskError, match="has no option"):
        spec.parse_options({"algorithm": "md5"})
