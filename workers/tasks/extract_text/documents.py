"""PDF (pypdf) and DOCX (python-docx): documents read by a library, imported only when one comes."""

from __future__ import annotations

import io
import logging
import re
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from workers.registry import ItemError
from workers.tasks.extract_text.chunks import tidy
from workers.tasks.extract_text.extracted import Extracted, one_line, short_reason

_OLE = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"  # an encrypted OOXML file, or a legacy .doc
_MAX_XML = 256 << 20  # uncompressed word/document.xml larger than this is refused (zip bomb)


def extract_pdf(path: Path, data: bytes, encoding: str) -> Extracted:
    """Each page's text, tidied and joined by a blank line; where each page starts; title, author, date."""
    from pypdf import PdfReader

    if b"%PDF-" not in data[:1024]:
        raise ItemError("not a valid PDF (no %PDF header)")
    # pypdf logs every repair it makes on broken files; those are not our errors.
    logging.getLogger("pypdf").setLevel(logging.ERROR)
    try:
        reader = PdfReader(io.BytesIO(data))
        if reader.is_encrypted:
            try:
                opened = bool(reader.decrypt(""))
            except Exception:
                opened = False
            if not opened:
                raise ItemError("PDF is encrypted (password required)")
        page_texts, page_starts, offset = [], [], 0
        for page in reader.pages:
            page_text = tidy(page.extract_text() or "")
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
            raise ItemError(f"not a valid PDF (truncated: {short_reason(exc)})") from None
        raise ItemError(f"not a valid PDF ({short_reason(exc)})") from None
    text = "\n\n".join(t for t in page_texts if t)  # already tidy: offsets above stay exact
    warnings = ["no text layer (a scanned PDF needs OCR)"] if page_texts and not text.strip() else []
    return Extracted(text, pages=len(page_texts), meta=meta, page_starts=page_starts, warnings=warnings)


def _pdf_meta(reader: Any) -> dict[str, Any]:
    try:
        info = reader.metadata
    except Exception:
        return {}
    if not info:
        return {}
    meta: dict[str, Any] = {"title": one_line(info.get("/Title")), "author": one_line(info.get("/Author"))}
    try:
        created = info.creation_date
        meta["created"] = created.isoformat() if created else None
    except Exception:  # a date pypdf cannot read: left out
        pass
    return meta


def extract_docx(path: Path, data: bytes, encoding: str) -> Extracted:
    """Paragraphs and table rows in document order; pages; title (or the first line), author, date."""
    if data.startswith(_OLE):
        raise ItemError("DOCX is encrypted (password-protected) or a legacy .doc file")
    app_pages = _check_docx_zip(data)
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
            "title": one_line(props.title),
            "author": one_line(props.author),
            "created": props.created.isoformat() if props.created else None,
        }
    except zipfile.BadZipFile:
        raise ItemError("not a valid DOCX (corrupt zip)") from None
    except RecursionError:
        raise ItemError("not a valid DOCX (document structure too deeply nested)") from None
    except Exception as exc:
        raise ItemError(f"not a valid DOCX ({short_reason(exc)})") from None
    if not meta["title"]:
        meta["title"] = next((p for p in parts if p.strip()), None)
    # Word saves the real page count; other writers copy a template's stale one, and explicit
    # page breaks are a lower bound either way.
    return Extracted("\n".join(parts), pages=max(app_pages or 0, breaks + 1), meta=meta)


def _check_docx_zip(data: bytes) -> int | None:
    """Refuse a DOCX whose zip is corrupt, lacks the document or would unpack too large (before
    python-docx unpacks it); returns the page count Word saved, if any."""
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as zf:
            names = set(zf.namelist())
            if "word/document.xml" not in names:
                raise ItemError("not a valid DOCX (no word/document.xml)")
            if zf.getinfo("word/document.xml").file_size > _MAX_XML:
                raise ItemError("DOCX is too large (word/document.xml over 256 MiB)")
            return _docx_app_pages(zf) if "docProps/app.xml" in names else None
    except zipfile.BadZipFile:
        raise ItemError("not a valid DOCX (corrupt zip)") from None


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
