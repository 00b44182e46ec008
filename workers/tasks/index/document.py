"""One file made ready for the index: its text read through the extract-text extractors, cut into
chunks that keep their page and heading, and its metadata (dates, counts, language)."""

from __future__ import annotations

import bisect
import datetime as dt
import hashlib
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from data.index_store import DocumentRecord
from workers.tasks.extract_text import extract_document
from workers.tasks.extract_text.chunks import chunk_spans, tidy
from workers.tasks.extract_text.extracted import Extracted

HASH_BLOCK = 1 << 20
LANG_SAMPLE_CHARS = 4000  # the language is told from the first characters of the text
LANG_MIN_CHARS = 40  # below this a guess would be noise: no language
TITLE_CHARS = 300


@dataclass
class Chunk:
    """A piece of the document's text and where it is."""

    seq: int
    text: str
    start: int
    end: int
    page: int | None = None
    page_end: int | None = None
    heading: str | None = None


@dataclass
class Prepared:
    """What the task writes to the index for one file."""

    record: DocumentRecord
    chunks: list[Chunk]
    warnings: list[str] = field(default_factory=list)


def file_hash(path: str) -> tuple[str, int, float]:
    """(sha256 hex, size, mtime) of the file's bytes: an unchanged hash means nothing to embed."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        stat = os.fstat(fh.fileno())
        while block := fh.read(HASH_BLOCK):
            digest.update(block)
    return digest.hexdigest(), stat.st_size, stat.st_mtime


def _segments(extracted: Extracted) -> list[tuple[int, int, int | None]]:
    """(start, end, page) of the text's parts that chunks never cross: each page of a PDF (so every
    chunk has one page), else the whole text."""
    starts = extracted.page_starts or []
    if not starts:
        return [(0, len(extracted.text), None)]
    ends = [*starts[1:], len(extracted.text)]
    return [(start, end, page) for page, (start, end) in enumerate(zip(starts, ends, strict=True), 1) if end > start]


def chunks_of(extracted: Extracted, size: int, overlap: int) -> list[Chunk]:
    """Overlapping chunks of the extracted text (offsets into it), each with its page and the last
    heading before it."""
    text = extracted.text
    heading_at = [offset for offset, _ in extracted.headings]
    chunks: list[Chunk] = []
    for first, last, page in _segments(extracted):
        for start, end in chunk_spans(text[first:last], size, overlap):
            piece = tidy(text[first + start:first + end])
            if not piece:
                continue
            chunk = Chunk(len(chunks), piece, first + start, first + end, page, page)
            where = bisect.bisect_right(heading_at, first + start)
            if where:
                chunk.heading = extracted.headings[where - 1][1][:TITLE_CHARS]
            chunks.append(chunk)
    return chunks


def prepare(path: str, digest: str, size: int, mtime: float, options: Mapping[str, Any]) -> Prepared:
    """Read the file and make its record and chunks (an unreadable file raises ItemError)."""
    fmt, extracted = extract_document(Path(path), str(options.get("encoding") or "auto"), int(options["max_mb"]))
    chunks = chunks_of(extracted, int(options["chunk_size"]), int(options["chunk_overlap"]))
    meta = extracted.meta
    record = DocumentRecord(
        path=path, hash=digest, size=size, mtime=mtime, format=fmt,
        title=_text(meta.get("title")) or Path(path).name, author=_text(meta.get("author")),
        created=iso_date(meta.get("created")), modified=iso_date(meta.get("modified")) or iso_date(mtime),
        pages=extracted.pages, words=len(extracted.text.split()),
        lang=detect_language(extracted.text) or _text(meta.get("language")),
    )
    warnings = list(extracted.warnings)
    if not chunks and not warnings:
        warnings.append("no text found")
    return Prepared(record, chunks, warnings)


def _text(value: Any) -> str | None:
    if value in (None, ""):
        return None
    return " ".join(str(value).split())[:TITLE_CHARS] or None


def iso_date(value: Any) -> str | None:
    """A date as ISO 8601 text (what ``after=`` / ``before=`` compare): from a Unix time, a datetime,
    or text that already starts with a date; None when there is none."""
    if value in (None, ""):
        return None
    if isinstance(value, (int, float)):
        return dt.datetime.fromtimestamp(value, dt.UTC).isoformat(timespec="seconds")
    if isinstance(value, dt.datetime):
        return value.isoformat(timespec="seconds")
    text = str(value).strip()
    try:
        dt.date.fromisoformat(text[:10])
    except ValueError:
        return None
    return text


def detect_language(text: str) -> str | None:
    """ISO 639-1 code of the text's language (py3langid, whose model ships in its package), or None."""
    sample = text[:LANG_SAMPLE_CHARS]
    if len(sample.strip()) < LANG_MIN_CHARS:
        return None
    import py3langid  # type: ignore[import-untyped]

    code, _ = py3langid.classify(sample)
    return str(code)
