"""Helpers shared by the built-in tasks: type sniffing, text decoding, safe output files.

Everything here is stdlib only and cheap: :func:`sniff_type` runs on the checksum hot path.
"""

from __future__ import annotations

import codecs
import contextlib
import csv
import json
import os
import re
from collections import Counter
from pathlib import Path

from workers.registry import CheckContext, ItemError, TaskContext

# --------------------------------------------------------------------------------------------
# File type from the first bytes
# --------------------------------------------------------------------------------------------

# Leading magic bytes, indexed by the first byte so a lookup costs one dict hit and a startswith or two.
_MAGIC: dict[int, tuple[tuple[bytes, str], ...]] = {}
for _magic, _kind in (
    (b"%PDF-", "pdf"),
    (b"%!PS", "postscript"),
    (b"\x89PNG\r\n\x1a\n", "png"),
    (b"\xff\xd8\xff", "jpeg"),
    (b"GIF87a", "gif"),
    (b"GIF89a", "gif"),
    (b"\x1f\x8b", "gzip"),
    (b"BZh", "bzip2"),
    (b"\xfd7zXZ\x00", "xz"),
    (b"(\xb5/\xfd", "zstd"),
    (b"7z\xbc\xaf\x27\x1c", "7z"),
    (b"Rar!\x1a\x07", "rar"),
    (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1", "ole"),  # legacy .doc/.xls, or a password-protected OOXML file
    (b"\x7fELF", "elf"),
    (b"II*\x00", "tiff"),
    (b"MM\x00*", "tiff"),
    (b"BM", "bmp"),
    (b"OggS", "ogg"),
    (b"fLaC", "flac"),
    (b"ID3", "mp3"),
    (b"SQLite format 3\x00", "sqlite"),
    (b"\x00\x00\x01\x00", "ico"),
):
    _MAGIC[_magic[0]] = (*_MAGIC.get(_magic[0], ()), (_magic, _kind))

_ODF_MIMETYPES = {
    b"application/epub+zip": "epub",
    b"application/vnd.oasis.opendocument.text": "odt",
    b"application/vnd.oasis.opendocument.spreadsheet": "ods",
    b"application/vnd.oasis.opendocument.presentation": "odp",
}

# Bytes that occur in text (tab, newlines, form feed, escape, printable ASCII and all high bytes).
_TEXT_BYTES = bytes({7, 8, 9, 10, 11, 12, 13, 27} | set(range(0x20, 0x100)) - {0x7F})


def sniff_type(head: bytes, complete: bool = False) -> str:
    """Detect a file's type from its first bytes (``complete``: ``head`` is the whole file).

    Returns one of: empty, pdf, zip, docx, xlsx, pptx, epub, odt, ods, odp, png, jpeg, gif, gzip,
    bzip2, xz, zstd, 7z, rar, ole, elf, tiff, bmp, ogg, flac, mp3, sqlite, ico, webp, wav, avi, mp4,
    html, xml, svg, json, jsonl, csv, text, binary.
    """
    if not head:
        return "empty"
    for magic, kind in _MAGIC.get(head[0], ()):
        if head.startswith(magic):
            if kind == "bzip2" and not head[3:4].isdigit():
                break
            return kind
    if head[:2] == b"PK" and head[2:4] in (b"\x03\x04", b"\x05\x06", b"\x07\x08"):
        return _zip_kind(head)
    if head[:4] == b"RIFF":
        return {b"WEBP": "webp", b"WAVE": "wav", b"AVI ": "avi"}.get(head[8:12], "binary")
    if head[4:8] == b"ftyp":
        return "mp4"
    return _text_kind(head, complete)


def _zip_kind(head: bytes) -> str:
    if head[30:38] == b"mimetype":
        for mime, kind in _ODF_MIMETYPES.items():
            if head.startswith(mime, 38):
                return kind
    if b"[Content_Types].xml" in head:
        if b"word/" in head:
            return "docx"
        if b"xl/" in head:
            return "xlsx"
        if b"ppt/" in head:
            return "pptx"
    return "zip"


def _text_kind(head: bytes, complete: bool) -> str:
    if head[:2] in (codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE):
        sample = head[:4096]
        try:
            text = sample.decode("utf-16")
        except UnicodeDecodeError:
            text = sample[: len(sample) // 2 * 2].decode("utf-16", "replace")
        return _text_kind(text.encode("utf-8"), complete and len(head) <= 4096)
    start = 3 if head[:3] == codecs.BOM_UTF8 else 0
    if head.find(b"\x00", start, 4096) >= 0:  # most binary files: decided without copying anything
        return "binary"
    sample = head[start:4096]
    if len(sample.translate(None, _TEXT_BYTES)) * 20 > len(sample):
        return "binary"
    stripped = sample.lstrip()
    low = stripped[:1024].lower()
    if low.startswith((b"<!doctype html", b"<html", b"<head", b"<body")) or (
        low.startswith(b"<") and b"<html" in low
    ):
        return "html"
    if low.startswith((b"<?xml", b"<svg")):
        if b"<svg" in low:
            return "svg"
        return "html" if b"<html" in low else "xml"
    if stripped[:1] in (b"{", b"["):
        return _json_kind(head, complete)
    if _looks_like_csv(sample, complete):
        return "csv"
    return "text"


def _json_kind(head: bytes, complete: bool) -> str:
    if not complete:
        return "json"
    try:
        json.loads(head)
        return "json"
    except ValueError:
        pass
    lines = [line for line in head.splitlines() if line.strip()]
    if lines and all(line.lstrip()[:1] == b"{" for line in lines[:20]):
        return "jsonl"
    return "text"


def _looks_like_csv(sample: bytes, complete: bool) -> bool:
    lines = sample.split(b"\n", 12)
    if not complete or len(lines) > 12:
        lines = lines[:-1]  # the last line may be cut short
    lines = [line for line in lines if line.strip()]
    if len(lines) < 2 or not any(d in lines[-1] for d in b",;\t|"):
        return False
    return guess_delimiter("\n".join(line.decode("latin-1") for line in lines), min_rows=2) is not None


def guess_delimiter(text: str, min_rows: int = 2, lines: int = 50) -> str | None:
    """The delimiter (, ; TAB |) that splits the most rows into the same number of fields.

    Scores ``rows sharing the most common width x (width - 1)``, so a decimal comma inside a
    semicolon file (2 "fields" per row) loses to the real delimiter, and a preamble of a few odd
    lines does not matter. ``None`` when no candidate gives ``min_rows`` rows of 2+ fields.
    """
    head = [line for line in text.splitlines()[:lines] if line.strip()]
    best: tuple[int, str] | None = None
    for delim in (",", ";", "\t", "|"):
        if not any(delim in line for line in head):
            continue
        try:
            widths = [len(row) for row in csv.reader(head, delimiter=delim)]
        except csv.Error:
            continue
        width, rows = Counter(widths).most_common(1)[0]
        if width < 2 or rows < min_rows:
            continue
        score = rows * (width - 1)
        if best is None or score > best[0]:
            best = (score, delim)
    return best[1] if best else None


# --------------------------------------------------------------------------------------------
# Text decoding
# --------------------------------------------------------------------------------------------

_CP1252_UNDEFINED = re.compile(rb"[\x81\x8d\x8f\x90\x9d]")


def decode_text(data: bytes, encoding: str = "auto") -> tuple[str, str]:
    """Decode bytes to text and name the encoding used.

    ``auto``: a BOM decides (utf-8-sig, utf-32, utf-16); otherwise BOM-less UTF-16 is recognised by
    its zero bytes, then strict utf-8, then cp1252, then latin-1 (which never fails).
    Any other ``encoding`` is used as given (undecodable bytes become U+FFFD).
    """
    if encoding and encoding.lower() != "auto":
        try:
            return data.decode(encoding, "replace"), codecs.lookup(encoding).name
        except LookupError:
            raise ItemError(f"unknown encoding {encoding!r}") from None
    if data.startswith(codecs.BOM_UTF8):
        return data[3:].decode("utf-8", "replace"), "utf-8-sig"
    if data.startswith((codecs.BOM_UTF32_LE, codecs.BOM_UTF32_BE)):
        return data.decode("utf-32", "replace"), "utf-32"
    if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return data.decode("utf-16", "replace"), "utf-16"
    utf16 = _bomless_utf16(data)
    if utf16:
        return data.decode(utf16, "replace"), utf16
    try:
        return data.decode("utf-8"), "utf-8"
    except UnicodeDecodeError:
        pass
    if not _CP1252_UNDEFINED.search(data):
        return data.decode("cp1252"), "cp1252"
    return data.decode("latin-1"), "latin-1"


ENCODING_ALLOWED = "auto or a text codec such as utf-8, cp1252, latin-1"


def check_encoding(value: str, ctx: CheckContext) -> None:
    """Option check for ``encoding``: ``auto`` (or empty) or a text codec that :func:`decode_text` can use."""
    if not value or str(value).lower() == "auto":
        return
    try:
        b"x".decode(str(value), "replace")  # as decode_text does (empty bytes would skip the codec lookup)
    except LookupError as exc:
        raise ValueError("not a text encoding" if "text encoding" in str(exc) else "unknown encoding") from None
    except UnicodeError as exc:  # e.g. idna: no "replace" error handling
        raise ValueError(f"cannot read files with this codec ({exc})") from None


def _bomless_utf16(data: bytes) -> str | None:
    sample = data[:4096]
    if len(sample) < 8 or b"\x00" not in sample:
        return None
    even, odd = sample[0::2], sample[1::2]
    if odd.count(0) > 0.4 * len(odd) and even.count(0) < 0.05 * len(even):
        return "utf-16-le"
    if even.count(0) > 0.4 * len(even) and odd.count(0) < 0.05 * len(odd):
        return "utf-16-be"
    return None


_CONTROL = re.compile(r"[\x00-\x08\x0e-\x1a\x1c-\x1f\x7f]")


def check_is_text(text: str) -> None:
    """Fail the item if decoded "text" is really binary data (NULs or many control characters)."""
    sample = text[:8192]
    if "\x00" in sample or len(_CONTROL.findall(sample)) * 20 > len(sample):
        raise ItemError("not a text file (binary content)")


# --------------------------------------------------------------------------------------------
# Output files
# --------------------------------------------------------------------------------------------


def output_file(ctx: TaskContext, source: Path, suffix: str) -> Path:
    """``ctx.output_path(suffix)``, refusing a target that is the input file itself."""
    target = ctx.output_path(suffix)
    try:
        same = target.exists() and os.path.samefile(target, source)
    except OSError:
        same = False
    if same or target == Path(source).resolve():
        raise ItemError(f"output {target.name} would overwrite the input file")
    return target


def write_atomic(target: Path, data: str | bytes, encoding: str = "utf-8") -> None:
    """Write a whole file through a temporary sibling so a reader never sees half of it.

    A failure to write (disk full, a name too long for the file system) fails the item cleanly.
    """
    try:
        _write_atomic(target, data, encoding)
    except OSError as exc:
        raise ItemError(f"cannot write {target.name}: {exc.strerror or exc}") from None


def _write_atomic(target: Path, data: str | bytes, encoding: str) -> None:
    tmp = target.with_name(f".{target.name}.{os.getpid()}.part")
    try:
        if isinstance(data, str):
            with open(tmp, "w", encoding=encoding, newline="") as fh:
                fh.write(data)
        else:
            with open(tmp, "wb") as fh:
                fh.write(data)
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise


def relative_to_output(ctx_output_dir: Path, target: Path) -> str:
    """The output file's path relative to the job's output folder, with forward slashes."""
    return target.relative_to(Path(ctx_output_dir).resolve()).as_posix()


def read_limited(path: Path, max_bytes: int) -> bytes:
    """Read a whole file, failing the item cleanly if it is larger than ``max_bytes``."""
    try:
        with open(path, "rb") as fh:
            data = fh.read(max_bytes + 1)
    except OSError as exc:
        raise ItemError(f"cannot read file: {exc.strerror or exc}") from None
    if len(data) > max_bytes:
        raise ItemError(f"file is larger than the {max_bytes // (1 << 20)} MiB limit of this task")
    return data
