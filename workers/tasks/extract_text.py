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
and DOCX), ``title`` / ``author`` / ``created`` when the document has them, ``text_path`` and
``chunks_path`` (relative to the output folder), and ``warning`` (e.g. a PDF with no text layer).
``pages`` is the PDF page count, for DOCX the page count Word saved or 1 + explicit page breaks,
whichever is larger,
and ``null`` for formats without pages.

The format comes from the extension (.pdf .docx .html .htm .xhtml .md .markdown .txt .text .log
.rst .json .jsonl .ndjson .csv .tsv) or, for any other name, from the file's first bytes.
Encrypted, corrupt, truncated, empty and binary inputs fail the item with a readable reason.
"""

from __future__ import annotations

import bisect
import csv
import io
import json
import re
import zipfile
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path
from typing import Any, Iterator

from workers.registry import CheckContext, ItemError, Option, TaskContext, task
from workers.tasks._common import (
    ENCODING_ALLOWED,
    check_encoding,
    check_is_text,
    decode_text,
    guess_delimiter,
    output_file,
    read_limited,
    relative_to_output,
    sniff_type,
    write_atomic,
)


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
_SNIFFED = {"pdf": "pdf", "docx": "docx", "html": "html", "json": "json", "jsonl": "jsonl", "csv": "csv", "text": "text"}
_LEGACY = {".doc": "legacy Word .doc", ".xls": "Excel", ".xlsx": "Excel", ".ppt": "PowerPoint", ".pptx": "PowerPoint"}
_TEXT_LIMIT_META = 200  # characters kept of a title/author in the item result


@dataclass
class Extracted:
    text: str
    pages: int | None = None
    encoding: str | None = None
    meta: dict[str, Any] = field(default_factory=dict)
    page_starts: list[int] | None = None  # character offset where each PDF page starts
    warning: str | None = None


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
    path = Path(path)
    data = read_limited(path, int(opts.get("max_mb", 256)) << 20)
    if not data:
        raise ItemError("empty file (0 bytes)")
    fmt = detect_format(path, data)
    encoding = str(opts.get("encoding") or "auto")
    extracted = EXTRACTORS[fmt](path, data, encoding)
    text = _tidy(extracted.text)

    txt_path = output_file(ctx, path, ".txt")
    chunks_path = output_file(ctx, path, ".chunks.jsonl")
    write_atomic(txt_path, text + ("\n" if text else ""))
    lines = []
    for n, (start, end) in enumerate(chunk_spans(text, size, overlap)):
        record: dict[str, Any] = {
            "id": f"{ctx.rel_path}#{n}",
            "source": ctx.rel_path,
            "chunk": n,
            "start": start,
            "end": end,
        }
        if extracted.page_starts:
            record["page"] = bisect.bisect_right(extracted.page_starts, start)
            record["page_end"] = bisect.bisect_right(extracted.page_starts, max(start, end - 1))
        record["text"] = text[start:end]
        lines.append(json.dumps(record, ensure_ascii=False))
    write_atomic(chunks_path, "".join(line + "\n" for line in lines))

    result: dict[str, Any] = {
        "format": fmt,
        "pages": extracted.pages,
        "words": len(text.split()),
        "chars": len(text),
        "chunks": len(lines),
        "encoding": extracted.encoding,
    }
    for key, value in extracted.meta.items():
        if value not in (None, ""):
            result[key] = value[:_TEXT_LIMIT_META] if isinstance(value, str) else value
    if extracted.warning:
        result["warning"] = extracted.warning
    elif not text.strip():
        result["warning"] = "no text found"
    result["text_path"] = relative_to_output(ctx.output_dir, txt_path)
    result["chunks_path"] = relative_to_output(ctx.output_dir, chunks_path)
    return result


def detect_format(path: Path, data: bytes) -> str:
    ext = path.suffix.lower()
    if ext in EXTENSIONS:
        return EXTENSIONS[ext]
    kind = sniff_type(data[: 1 << 20], len(data) <= 1 << 20)
    if kind in _SNIFFED:
        return _SNIFFED[kind]
    if ext in _LEGACY:
        raise ItemError(f"{_LEGACY[ext]} files are not supported by extract-text")
    raise ItemError(f"unsupported file type ({kind})")


# --------------------------------------------------------------------------------------------
# Chunking
# --------------------------------------------------------------------------------------------


def chunk_spans(text: str, size: int, overlap: int) -> Iterator[tuple[int, int]]:
    """(start, end) character spans of at most ``size`` characters, sharing about ``overlap``.

    A chunk ends at the last whitespace in its final quarter when there is one, and the next chunk
    starts ``overlap`` characters before that end, moved forward to the start of a word.
    """
    n = len(text)
    start = 0
    while start < n and text[start].isspace():
        start += 1
    while start < n:
        end = min(start + size, n)
        if end < n and not text[end].isspace():
            lo = start + (size * 3) // 4
            cut = max(text.rfind(" ", lo, end), text.rfind("\n", lo, end), text.rfind("\t", lo, end))
            if cut > start:
                end = cut
        stop = end
        while stop > start and text[stop - 1].isspace():
            stop -= 1
        yield start, stop
        if end >= n:
            return
        nxt = max(end - overlap, start + 1)
        if nxt < end and not text[nxt - 1].isspace():
            # move to the start of the next word, but never past the end of this chunk
            m = _SPACE.search(text, nxt, end)
            nxt = m.end() if m else nxt
        while nxt < n and text[nxt].isspace():
            nxt += 1
        start = nxt


_SPACE = re.compile(r"\s")
_WS_LINE = re.compile(r"[ \t\u00a0]+")
_MANY_BLANKS = re.compile(r"\n{3,}")


def _tidy(text: str) -> str:
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    lines = [_WS_LINE.sub(" ", line).strip() for line in text.split("\n")]
    return _MANY_BLANKS.sub("\n\n", "\n".join(lines)).strip()


# --------------------------------------------------------------------------------------------
# PDF (pypdf)
# --------------------------------------------------------------------------------------------


def extract_pdf(path: Path, data: bytes, encoding: str) -> Extracted:
    import logging

    from pypdf import PdfReader

    if b"%PDF-" not in data[:1024]:
        raise ItemError("not a valid PDF (no %PDF header)")
    # pypdf logs every repair it makes on broken files; those are not our errors.
    logging.getLogger("pypdf").setLevel(logging.ERROR)
    try:
        reader = PdfReader(io.BytesIO(data))
        if reader.is_encrypted:
            try:
                opened = reader.decrypt("")
            except Exception:
                opened = 0
            if not opened:
                raise ItemError("PDF is encrypted (password required)")
        page_texts, page_starts, offset = [], [], 0
        for page in reader.pages:
            page_text = _tidy(page.extract_text() or "")
            if page_text and offset:
                offset += 2  # the blank line between pages
            page_starts.append(offset)
            page_texts.append(page_text)
            offset += len(page_text)
        meta = _pdf_meta(reader)
    except ItemError:
        raise
    except RecursionError:
        raise ItemError("not a valid PDF (object structure too deeply nested)") from None
    except Exception as exc:
        if b"%%EOF" not in data[-2048:]:
            raise ItemError(f"not a valid PDF (truncated: {_reason(exc)})") from None
        raise ItemError(f"not a valid PDF ({_reason(exc)})") from None
    text = "\n\n".join(t for t in page_texts if t)  # already tidy: offsets above stay exact
    warning = None
    if page_texts and not text.strip():
        warning = "no text layer (a scanned PDF needs OCR)"
    return Extracted(text, pages=len(page_texts), meta=meta, page_starts=page_starts, warning=warning)


def _pdf_meta(reader: Any) -> dict[str, Any]:
    try:
        info = reader.metadata
    except Exception:
        return {}
    if not info:
        return {}
    meta: dict[str, Any] = {"title": _s(info.get("/Title")), "author": _s(info.get("/Author"))}
    try:
        created = info.creation_date
        meta["created"] = created.isoformat() if created else None
    except Exception:
        pass
    return meta


def _s(value: Any) -> str | None:
    if value is None:
        return None
    return " ".join(str(value).split()) or None


def _reason(exc: BaseException) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text[:200]


# --------------------------------------------------------------------------------------------
# DOCX (python-docx)
# --------------------------------------------------------------------------------------------

_OLE = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
_MAX_XML = 256 << 20  # uncompressed word/document.xml larger than this is refused (zip bomb)


def extract_docx(path: Path, data: bytes, encoding: str) -> Extracted:
    if data.startswith(_OLE):
        raise ItemError("DOCX is encrypted (password-protected) or a legacy .doc file")
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as zf:
            names = set(zf.namelist())
            if "word/document.xml" not in names:
                raise ItemError("not a valid DOCX (no word/document.xml)")
            if zf.getinfo("word/document.xml").file_size > _MAX_XML:
                raise ItemError("DOCX is too large (word/document.xml over 256 MiB)")
            app_pages = _docx_app_pages(zf) if "docProps/app.xml" in names else None
    except zipfile.BadZipFile:
        raise ItemError("not a valid DOCX (corrupt zip)") from None
    import docx
    from docx.table import Table

    try:
        document = docx.Document(io.BytesIO(data))
        parts: list[str] = []
        breaks = 0
        for block in document.iter_inner_content():
            if isinstance(block, Table):
                parts.extend(_docx_table_rows(block))
            else:
                parts.append(block.text)
                breaks += len(block._p.xpath(".//w:br[@w:type='page']"))
        props = document.core_properties
        meta = {
            "title": _s(props.title),
            "author": _s(props.author),
            "created": props.created.isoformat() if props.created else None,
        }
    except zipfile.BadZipFile:
        raise ItemError("not a valid DOCX (corrupt zip)") from None
    except RecursionError:
        raise ItemError("not a valid DOCX (document structure too deeply nested)") from None
    except Exception as exc:
        raise ItemError(f"not a valid DOCX ({_reason(exc)})") from None
    if not meta["title"]:
        meta["title"] = next((p for p in parts if p.strip()), None)
    # Word saves the real page count; other writers copy a template's stale one, and explicit
    # page breaks are a lower bound either way.
    return Extracted("\n".join(parts), pages=max(app_pages or 0, breaks + 1), meta=meta)


def _docx_table_rows(table: Any) -> Iterator[str]:
    for row in table.rows:
        cells, seen = [], set()
        for cell in row.cells:
            if id(cell._tc) in seen:  # a merged cell repeats across the columns it spans
                continue
            seen.add(id(cell._tc))
            cells.append(" ".join(cell.text.split()))
        yield " | ".join(cells)


def _docx_app_pages(zf: zipfile.ZipFile) -> int | None:
    match = re.search(rb"<(?:\w+:)?Pages>(\d+)</", zf.read("docProps/app.xml")[:65536])
    return int(match.group(1)) if match and int(match.group(1)) > 0 else None


# --------------------------------------------------------------------------------------------
# HTML (stdlib html.parser)
# --------------------------------------------------------------------------------------------

_BLOCK_TAGS = {
    "address", "article", "aside", "blockquote", "br", "dd", "div", "dl", "dt", "fieldset",
    "figcaption", "figure", "footer", "form", "h1", "h2", "h3", "h4", "h5", "h6", "header", "hr",
    "li", "main", "nav", "ol", "p", "pre", "section", "table", "tr", "ul", "caption", "summary",
}  # fmt: skip
_SKIP_TAGS = {"script", "style", "noscript", "template", "svg", "math", "iframe", "object"}
_CHARSET = re.compile(rb"""<meta[^>]+charset\s*=\s*["']?\s*([A-Za-z0-9_.:-]+)""", re.I)


class _HTMLText(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self.skip = 0
        self.in_title = False
        self.title: list[str] = []
        self.meta: dict[str, str] = {}

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in _SKIP_TAGS:
            self.skip += 1
        elif tag == "title":
            self.in_title = True
        elif tag == "meta":
            a = {k: v or "" for k, v in attrs}
            name = (a.get("name") or a.get("property") or "").lower()
            if name in ("author", "description", "og:title") and a.get("content"):
                self.meta.setdefault(name, a["content"])
        elif tag == "html":
            lang = dict(attrs).get("lang")
            if lang:
                self.meta["language"] = lang
        if tag in _BLOCK_TAGS:
            self.parts.append("\n")
        elif tag in ("td", "th"):
            self.parts.append(" | ")

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag not in _SKIP_TAGS:  # <svg/> and friends have no content to skip
            self.handle_starttag(tag, attrs)

    def handle_endtag(self, tag: str) -> None:
        if tag in _SKIP_TAGS:
            self.skip = max(0, self.skip - 1)
        elif tag == "title":
            self.in_title = False
        if tag in _BLOCK_TAGS:
            self.parts.append("\n")

    def handle_data(self, data: str) -> None:
        if self.in_title:
            self.title.append(data)
        elif not self.skip:
            self.parts.append(data)


def extract_html(path: Path, data: bytes, encoding: str) -> Extracted:
    if encoding.lower() == "auto":
        text, used = decode_text(data)
        if used in ("cp1252", "latin-1"):
            declared = _CHARSET.search(data[:4096])
            if declared:
                try:
                    text, used = data.decode(declared.group(1).decode("ascii"), "replace"), declared.group(1).decode().lower()
                except LookupError:
                    pass
    else:
        text, used = decode_text(data, encoding)
    check_is_text(text)
    parser = _HTMLText()
    try:
        parser.feed(text)
        parser.close()
    except Exception as exc:  # html.parser is lenient; this is belt and braces
        raise ItemError(f"not valid HTML ({_reason(exc)})") from None
    body = "".join(parser.parts)
    body = "\n".join(" ".join(line.split()) for line in body.split("\n"))
    meta = {
        "title": _s("".join(parser.title)) or _s(parser.meta.get("og:title")),
        "author": _s(parser.meta.get("author")),
        "description": _s(parser.meta.get("description")),
        "language": parser.meta.get("language"),
    }
    return Extracted(body, encoding=used, meta=meta)


# --------------------------------------------------------------------------------------------
# Markdown, plain text
# --------------------------------------------------------------------------------------------

_MD_RULES = [
    (re.compile(r"^[ \t]{0,3}(`{3,}|~{3,}).*$", re.M), ""),  # code fence markers (the code is kept)
    (re.compile(r"^[ \t]{0,3}([-*_])([ \t]*\1){2,}[ \t]*$", re.M), ""),  # horizontal rules
    (re.compile(r"^[ \t]*\|?([ \t]*:?-{3,}:?[ \t]*\|)+[ \t]*(:?-{3,}:?)?[ \t]*$", re.M), ""),  # table separator rows
    (re.compile(r"^[ \t]{0,3}\[[^\]\n]+\]:[ \t]+\S+.*$", re.M), ""),  # link reference definitions
    (re.compile(r"^[ \t]{0,3}#{1,6}[ \t]+(.*?)[ \t]*#*[ \t]*$", re.M), r"\1"),  # ATX headings
    (re.compile(r"^[ \t]{0,3}>[ \t]?", re.M), ""),  # block quotes
    (re.compile(r"^([ \t]*)(?:[-*+]|\d+[.)])[ \t]+(\[[ xX]\][ \t]+)?", re.M), r"\1"),  # list markers
    (re.compile(r"!\[([^\]\n]*)\]\([^)\n]*\)"), r"\1"),  # images -> alt text
    (re.compile(r"\[([^\]\n]+)\]\([^)\n]*\)"), r"\1"),  # inline links -> text
    (re.compile(r"\[([^\]\n]+)\]\[[^\]\n]*\]"), r"\1"),  # reference links -> text
    (re.compile(r"<(https?://[^>\s]+)>"), r"\1"),  # autolinks
    (re.compile(r"</?[A-Za-z][^>\n]*>"), ""),  # inline HTML tags
    (re.compile(r"(\*\*|__)(?=\S)(.+?)(?<=\S)\1"), r"\2"),  # bold
    (re.compile(r"(?<![\w*])\*(?=\S)(.+?)(?<=\S)\*(?![\w*])"), r"\1"),  # *em*
    (re.compile(r"(?<!\w)_(?=\S)(.+?)(?<=\S)_(?!\w)"), r"\1"),  # _em_
    (re.compile(r"~~(.+?)~~"), r"\1"),  # strikethrough
    (re.compile(r"`([^`\n]*)`"), r"\1"),  # inline code
    (re.compile(r"^[ \t]*\|[ \t]*|[ \t]*\|[ \t]*$", re.M), ""),  # outer table pipes
]
_FRONT_MATTER = re.compile(r"\A---\s*\n(.*?)\n(?:---|\.\.\.)\s*(\n|\Z)", re.S)
_FIRST_HEADING = re.compile(r"^[ \t]{0,3}#{1,6}[ \t]+(.*?)[ \t]*#*[ \t]*$", re.M)


def extract_markdown(path: Path, data: bytes, encoding: str) -> Extracted:
    text, used = decode_text(data, encoding)
    check_is_text(text)
    text = text.replace("\r\n", "\n")
    meta: dict[str, Any] = {}
    front = _FRONT_MATTER.match(text)
    if front:
        for line in front.group(1).splitlines():
            key, sep, value = line.partition(":")
            if sep and key.strip().lower() in ("title", "author", "date"):
                meta[key.strip().lower() if key.strip().lower() != "date" else "created"] = value.strip().strip("\"'")
        text = text[front.end():]
    if "title" not in meta:
        heading = _FIRST_HEADING.search(text)
        if heading:
            meta["title"] = heading.group(1)
    for pattern, repl in _MD_RULES:
        text = pattern.sub(repl, text)
    if meta.get("title"):
        for pattern, repl in _MD_RULES[7:]:
            meta["title"] = pattern.sub(repl, meta["title"])
    return Extracted(text, encoding=used, meta=meta)


def extract_plain(path: Path, data: bytes, encoding: str) -> Extracted:
    text, used = decode_text(data, encoding)
    check_is_text(text)
    return Extracted(text, encoding=used)


# --------------------------------------------------------------------------------------------
# JSON, JSON Lines, CSV
# --------------------------------------------------------------------------------------------


def _json_lines(value: Any, prefix: str = "") -> Iterator[str]:
    if isinstance(value, dict):
        for key, item in value.items():
            yield from _json_lines(item, f"{prefix}.{key}" if prefix else str(key))
    elif isinstance(value, list):
        for n, item in enumerate(value):
            yield from _json_lines(item, f"{prefix}[{n}]")
    elif value is not None:
        text = value if isinstance(value, str) else json.dumps(value)
        yield f"{prefix}: {text}" if prefix else text


def extract_json(path: Path, data: bytes, encoding: str) -> Extracted:
    text, used = decode_text(data, encoding)
    check_is_text(text)
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ItemError(f"not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}") from None
    except RecursionError:
        raise ItemError("not valid JSON: nested too deeply") from None
    meta: dict[str, Any] = {"top_level": type(value).__name__.replace("dict", "object").replace("list", "array")}
    if isinstance(value, dict) and isinstance(value.get("title"), str):
        meta["title"] = value["title"]
    return Extracted("\n".join(_json_lines(value)), encoding=used, meta=meta)


def extract_jsonl(path: Path, data: bytes, encoding: str) -> Extracted:
    text, used = decode_text(data, encoding)
    check_is_text(text)
    out, records = [], 0
    for lineno, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            value = json.loads(line)
        except (json.JSONDecodeError, RecursionError) as exc:
            raise ItemError(f"not valid JSON Lines: line {lineno}: {getattr(exc, 'msg', exc)}") from None
        out.extend(_json_lines(value, f"[{records}]"))
        records += 1
    return Extracted("\n".join(out), encoding=used, meta={"records": records})


def extract_csv(path: Path, data: bytes, encoding: str) -> Extracted:
    text, used = decode_text(data, encoding)
    check_is_text(text)
    delimiter = guess_delimiter(text) or ("\t" if path.suffix.lower() == ".tsv" else ",")
    rows_out, columns, rows = [], 0, 0
    try:
        for row in csv.reader(io.StringIO(text), delimiter=delimiter, skipinitialspace=True):
            if not any(cell.strip() for cell in row):
                continue
            columns = max(columns, len(row))
            rows += 1
            rows_out.append(" | ".join(" ".join(cell.split()) for cell in row))
    except csv.Error as exc:
        raise ItemError(f"not valid CSV: {exc}") from None
    meta = {"rows": rows, "columns": columns, "delimiter": delimiter}
    return Extracted("\n".join(rows_out), encoding=used, meta=meta)


EXTRACTORS = {
    "pdf": extract_pdf,
    "docx": extract_docx,
    "html": extract_html,
    "markdown": extract_markdown,
    "text": extract_plain,
    "json": extract_json,
    "jsonl": extract_jsonl,
    "csv": extract_csv,
}
