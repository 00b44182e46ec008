"""extract-text: plain text, chunks and metadata from PDF, DOCX, HTML, Markdown, TXT, JSON and CSV.

For every input ``<name>`` (the full file name, extension included, so ``a.pdf`` and ``a.docx``
never collide and a ``.txt`` input is never overwritten) it writes, mirroring the input's relative
path under the job's output folder:

* ``<name>.txt``: the extracted text (UTF-8);
* ``<name>.chunks.jsonl``: one JSON object per chunk of about ``chunk_size`` characters, consecutive
  chunks sharing ``chunk_overlap`` characters, cut at whitespace where possible:
  ``{"id", "source", "chunk", "start", "end", "text"}`` plus, for PDFs, ``"page"`` and
  ``"page_end"`` (1-based pages where the chunk starts and ends).

Item result: ``format, pages, words, chars, chunks, encoding`` (for text formats; ``null`` for PDF
and DOCX), ``title`` / ``author`` / ``created`` / ``modified`` when the document has them, ``text_path``
and ``chunks_path`` (relative to the output folder), and ``warnings`` (a list, the convention of every
task: a PDF with no text layer, text that could not be read, text that looks like garbage ...).
``pages`` is the PDF page count, for DOCX the page count Word saved or 1 + explicit page breaks,
whichever is larger,
and ``null`` for formats without pages.

The format comes from the extension (.pdf .docx .html .htm .xhtml .md .markdown .txt .text .log
.rst .json .jsonl .ndjson .csv .tsv) or, for any other name, from the file's first bytes.
Encrypted, corrupt, truncated, empty and binary inputs fail the item with a readable reason.

Modules: ``formats`` (which format a file is, and its extractor), ``documents`` (PDF on workers.pdf,
DOCX), ``wordml`` (a DOCX package's text in document order), ``markup`` (HTML, Markdown, plain text),
``structured`` (JSON, JSON Lines, CSV), ``quality`` (does text look like garbage), ``chunks`` (tidying
and chunking the text); this package registers the task.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from workers.registry import CheckContext, ItemError, Option, TaskContext, task
from workers.tasks._common import (
    ENCODING_ALLOWED,
    check_encoding,
    output_file,
    read_limited,
    relative_to_output,
    write_atomic,
)
from workers.tasks.extract_text.chunks import chunk_lines
from workers.tasks.extract_text.extracted import Extracted
from workers.tasks.extract_text.formats import EXTRACTORS, detect_format
from workers.tasks.extract_text.quality import garbage_reason

META_CHARS = 200  # characters kept of a text value of the metadata (title, author ...) in the item result


def _at_most_half_a_chunk(overlap: int, ctx: CheckContext) -> None:
    """Consecutive chunks may share at most half a chunk (more would repeat most of the text)."""
    half = ctx.options["chunk_size"] // 2
    if overlap > half:
        raise ValueError(f"at most chunk_size/2 ({half})")


OPTIONS = (
    Option("chunk_size", int, 1000, "characters per chunk in <name>.chunks.jsonl", min=50),
    Option("chunk_overlap", int, 200, "characters shared by consecutive chunks", min=0,
           check=_at_most_half_a_chunk, allowed="at most chunk_size/2"),
    Option(
        "encoding",
        str,
        "auto",
        "encoding of TXT/MD/HTML/JSON/CSV inputs; auto = BOM, then utf-8, cp1252, latin-1",
        check=check_encoding,
        allowed=ENCODING_ALLOWED,
    ),
    # the whole input is read into memory: beyond a few GiB the read itself fails
    Option("max_mb", int, 256, "refuse inputs larger than this many MiB", min=1, max=4096),
)


@task(
    "extract-text",
    description="text, chunks and metadata from PDF, DOCX, HTML, Markdown, TXT, JSON, CSV",
    options=OPTIONS,
    cost_per_item=0.01,
    cost_per_byte=5e-8,
)
def extract_text(path: Path, ctx: TaskContext) -> dict:
    """Extract text and metadata from one document and write <name>.txt and <name>.chunks.jsonl."""
    opts = ctx.options
    size, overlap = int(opts.get("chunk_size", 1000)), int(opts.get("chunk_overlap", 200))
    if size < 50:
        raise ItemError("option chunk_size must be at least 50")
    if overlap < 0 or overlap > size // 2:
        raise ItemError("option chunk_overlap must be between 0 and chunk_size/2")
    fmt, extracted = extract_document(Path(path), str(opts.get("encoding") or "auto"), int(opts.get("max_mb", 256)))
    text = extracted.text
    txt_path = output_file(ctx, path, ".txt")
    chunks_path = output_file(ctx, path, ".chunks.jsonl")
    write_atomic(txt_path, text + ("\n" if text else ""))
    lines = chunk_lines(text, ctx.rel_path, size, overlap, extracted.page_starts)
    write_atomic(chunks_path, "".join(line + "\n" for line in lines))
    result = _result(fmt, text, len(lines), extracted)
    result["text_path"] = relative_to_output(ctx.output_dir, txt_path)
    result["chunks_path"] = relative_to_output(ctx.output_dir, chunks_path)
    return result


def extract_document(path: Path, encoding: str = "auto", max_mb: int = 256) -> tuple[str, Extracted]:
    """A document's format and what its extractor found: tidy text (offsets in page_starts and
    headings point into it), pages, headings, metadata, warnings; the index task reads documents
    through this too. An unreadable document raises ItemError."""
    data = read_limited(path, max_mb << 20)
    if not data:
        raise ItemError("empty file (0 bytes)")
    fmt = detect_format(path, data)
    extracted = EXTRACTORS[fmt](path, data, encoding)
    if fmt != "pdf":  # a PDF's pages are judged one by one
        reason = garbage_reason(extracted.text)
        if reason:
            extracted.warnings.append(f"the text looks like garbage ({reason})")
    return fmt, extracted


def _result(fmt: str, text: str, chunks: int, extracted: Extracted) -> dict[str, Any]:
    """The item's result: format, counts, the metadata found (long text cut short), a warning."""
    result: dict[str, Any] = {
        "format": fmt,
        "pages": extracted.pages,
        "words": len(text.split()),
        "chars": len(text),
        "chunks": chunks,
        "encoding": extracted.encoding,
    }
    for key, value in extracted.meta.items():
        if value not in (None, ""):
            result[key] = value[:META_CHARS] if isinstance(value, str) else value
    warnings = extracted.warnings or ([] if text.strip() else ["no text found"])
    if warnings:
        result["warnings"] = warnings
    return result
