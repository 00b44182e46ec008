"""Which format a file is (its extension, else its first bytes), and the extractor for each format."""

from __future__ import annotations

from pathlib import Path

from workers.registry import ItemError
from workers.tasks._common import sniff_type
from workers.tasks.extract_text.documents import extract_docx, extract_pdf
from workers.tasks.extract_text.extracted import Extractor
from workers.tasks.extract_text.markup import extract_html, extract_markdown, extract_plain
from workers.tasks.extract_text.structured import extract_csv, extract_json, extract_jsonl

EXTENSIONS = {
    ".pdf": "pdf",
    ".docx": "docx",
    ".html": "html",
    ".htm": "html",
    ".xhtml": "html",
    ".md": "markdown",
    ".markdown": "markdown",
    ".txt": "text",
    ".text": "text",
    ".log": "text",
    ".rst": "text",
    ".json": "json",
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
    ".csv": "csv",
    ".tsv": "csv",
}
# sniff_type's kind -> format, for a file whose extension says nothing
_SNIFFED = {kind: kind for kind in ("pdf", "docx", "html", "json", "jsonl", "csv", "text")}
_LEGACY = {".doc": "legacy Word .doc", ".xls": "Excel", ".xlsx": "Excel", ".ppt": "PowerPoint", ".pptx": "PowerPoint"}
_SNIFF_BYTES = 1 << 20  # of a file's first bytes, to tell its type

EXTRACTORS: dict[str, Extractor] = {
    "pdf": extract_pdf,
    "docx": extract_docx,
    "html": extract_html,
    "markdown": extract_markdown,
    "text": extract_plain,
    "json": extract_json,
    "jsonl": extract_jsonl,
    "csv": extract_csv,
}


def detect_format(path: Path, data: bytes) -> str:
    """The file's format (a key of EXTRACTORS); an unsupported one fails the item, saying what it is."""
    ext = path.suffix.lower()
    if ext in EXTENSIONS:
        return EXTENSIONS[ext]
    kind = sniff_type(data[:_SNIFF_BYTES], len(data) <= _SNIFF_BYTES)
    if kind in _SNIFFED:
        return _SNIFFED[kind]
    if ext in _LEGACY:
        raise ItemError(f"{_LEGACY[ext]} files are not supported by extract-text")
    raise ItemError(f"unsupported file type ({kind})")
