"""PDF (PDFium, through workers.pdf) and DOCX (python-docx and its XML): documents read by a library,
imported only when one comes.

A PDF's text is each page's reading text (form fields and annotations included), tidied, pages
joined by a blank line; headings come from its bookmarks. Pages are read for at most PDF_SECONDS;
warnings name the pages whose text is missing (no text layer, a font that cannot be loaded, a
broken page) or looks like garbage.
"""

from __future__ import annotations

import io
import re
import time
import zipfile
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from workers.registry import ItemError
from workers.tasks.extract_text.chunks import tidy
from workers.tasks.extract_text.extracted import Extracted, one_line, place_headings, short_reason
from workers.tasks.extract_text.quality import garbage_reason
from workers.tasks.extract_text.wordml import read_document, related_kinds

if TYPE_CHECKING:
    from workers.pdf import OutlineItem, PdfDocument

_OLE = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"  # an encrypted OOXML file, or a legacy .doc
_MAX_XML = 256 << 20  # a DOCX part larger than this unpacked is refused (zip bomb)
PDF_SECONDS = 120.0  # a PDF's pages are read for at most this long; the rest is left out, with a warning
_NO_TEXT = "no text layer (a scanned PDF needs OCR)"


# -- PDF ------------------------------------------------------------------------------------------
@dataclass
class _Pages:
    """What reading a PDF's pages found: each page's tidy text, and the pages with problems."""

    texts: list[str] = field(default_factory=list)
    scanned: list[int] = field(default_factory=list)  # no text, but images
    unreadable: list[int] = field(default_factory=list)  # text in a font PDFium could not load
    garbage: dict[str, list[int]] = field(default_factory=dict)  # reason -> pages
    broken: list[int] = field(default_factory=list)
    stopped: bool = False


def extract_pdf(path: Path, data: bytes, encoding: str) -> Extracted:
    """Each page's text, tidied and joined by a blank line; where each page starts; the bookmarks
    as headings; title, author, dates; warnings for pages whose text is missing or garbage."""
    from workers.pdf import PdfError, PdfPasswordError, open_pdf

    if b"%PDF-" not in data[:1024]:
        raise ItemError("not a valid PDF (no %PDF header)")
    try:
        with open_pdf(data, annotations=True) as doc:
            pages = _read_pages(doc, time.monotonic() + PDF_SECONDS)
            page_starts, text = _join_pages(pages.texts)
            headings = _outline_headings(doc.outline(), pages.texts, page_starts)
            info = doc.metadata
            total = doc.page_count
    except PdfPasswordError:
        raise ItemError("PDF is encrypted (password required)") from None
    except PdfError as exc:
        truncated = b"%%EOF" not in data[-2048:]
        raise ItemError(f"not a valid PDF ({'truncated: ' if truncated else ''}{exc.reason})") from None
    meta = {key: info.get(key) for key in ("title", "author", "created", "modified")}
    missing = pages.unreadable or pages.broken or pages.stopped
    warnings = [_NO_TEXT] if total and not text and not missing else _pdf_warnings(pages, total)
    return Extracted(text, pages=total, meta=meta, page_starts=page_starts, headings=headings, warnings=warnings)


def _read_pages(doc: PdfDocument, deadline: float) -> _Pages:
    """Every page's tidy text, and what is wrong with the pages that have a problem."""
    from workers.pdf import PdfError

    pages = _Pages()
    for index in range(doc.page_count):
        if index and time.monotonic() > deadline:
            pages.stopped = True
            break
        number = index + 1
        try:
            page = doc.page(index)
            text = tidy(page.reading_text())
            if page.unreadable_text_objects():
                pages.unreadable.append(number)
            elif not text and page.image_count():
                pages.scanned.append(number)
        except PdfError:
            pages.broken.append(number)
            text = ""
        reason = garbage_reason(text)
        if reason:
            pages.garbage.setdefault(reason, []).append(number)
        pages.texts.append(text)
        doc.close_page(index)
    return pages


def _join_pages(texts: list[str]) -> tuple[list[int], str]:
    """Where each page's text starts in the whole, and the whole (pages joined by a blank line)."""
    starts, offset = [], 0
    for text in texts:
        if text and offset:
            offset += 2  # the blank line between pages
        starts.append(offset)
        offset += len(text)
    return starts, "\n\n".join(t for t in texts if t)


def _outline_headings(outline: list[OutlineItem], texts: list[str], starts: list[int]) -> list[tuple[int, str]]:
    """(offset, title) per bookmark that opens a page read: where its title is on that page, else
    the page's start; in text order."""
    headings = []
    for item in outline:
        if item.page is None or item.page >= len(texts):
            continue
        found = place_headings(texts[item.page], [item.title])
        headings.append((starts[item.page] + (found[0][0] if found else 0), item.title))
    return sorted(headings, key=lambda heading: heading[0])


def _pdf_warnings(pages: _Pages, total: int) -> list[str]:
    warnings = []
    if pages.scanned:
        warnings.append(f"no text layer on {page_list(pages.scanned)} (scanned pages need OCR)")
    if pages.unreadable:
        warnings.append(f"text on {page_list(pages.unreadable)} could not be read: a font it uses is neither "
                        "embedded nor installed (often a Chinese, Japanese or Korean font)")
    warnings.extend(f"text on {page_list(numbers)} looks like garbage ({reason})"
                    for reason, numbers in pages.garbage.items())
    if pages.broken:
        warnings.append(f"{page_list(pages.broken)} could not be read (broken)")
    if pages.stopped:
        warnings.append(f"stopped after page {len(pages.texts)} of {total}: reading took over {PDF_SECONDS:g} s")
    return warnings


def page_list(numbers: Iterable[int], most: int = 8) -> str:
    """[1, 2, 3, 5] -> 'pages 1-3, 5'; [4] -> 'page 4'; more than ``most`` ranges end in '...'."""
    ranges: list[list[int]] = []
    for number in numbers:
        if ranges and number == ranges[-1][1] + 1:
            ranges[-1][1] = number
        else:
            ranges.append([number, number])
    parts = [str(a) if a == b else f"{a}-{b}" for a, b in ranges[:most]]
    single = len(ranges) == 1 and ranges[0][0] == ranges[0][1]
    return ("page " if single else "pages ") + ", ".join(parts) + (", ..." if len(ranges) > most else "")


# -- DOCX -----------------------------------------------------------------------------------------
def extract_docx(path: Path, data: bytes, encoding: str) -> Extracted:
    """The text in document order (headers, body, footers, notes, comments, text boxes, nested
    tables); heading paragraphs; pages; title (or the first line), author, dates."""
    if data.startswith(_OLE):
        raise ItemError("DOCX is encrypted (password-protected) or a legacy .doc file")
    app_pages = _check_docx_zip(data)
    import docx

    try:
        document = docx.Document(io.BytesIO(data))
        found = read_document(document.element.body, _note_parts(document.part), _related(document.part),
                              document.styles.element)
        meta = _docx_meta(document.core_properties)
    except zipfile.BadZipFile:
        raise ItemError("not a valid DOCX (corrupt zip)") from None
    except RecursionError:
        raise ItemError("not a valid DOCX (document structure too deeply nested)") from None
    except Exception as exc:
        raise ItemError(f"not a valid DOCX ({short_reason(exc)})") from None
    text = tidy("\n".join(found.lines))
    if not meta["title"]:
        meta["title"] = next((line for line in text.split("\n") if line.strip()), None)
    # Word saves the real page count; other writers copy a template's stale one, and explicit
    # page breaks are a lower bound either way.
    pages = max(app_pages or 0, found.page_breaks + 1)
    return Extracted(text, pages=pages, meta=meta, headings=place_headings(text, found.headings))


def _docx_meta(props: Any) -> dict[str, Any]:
    return {
        "title": one_line(props.title),
        "author": one_line(props.author),
        "created": props.created.isoformat() if props.created else None,
        "modified": props.modified.isoformat() if props.modified else None,
    }


def _note_parts(part: Any) -> dict[str, Any]:
    """The footnotes, endnotes and comments parts' XML roots, by kind."""
    from docx.oxml import parse_xml

    kinds = related_kinds()
    found = {}
    for rel in part.rels.values():
        if not rel.is_external and rel.reltype in kinds:
            element = getattr(rel.target_part, "element", None)
            found[kinds[rel.reltype]] = parse_xml(rel.target_part.blob) if element is None else element
    return found


def _related(part: Any) -> Any:
    """relationship id -> the XML root of that (header or footer) part, None when there is none."""

    def root(rel_id: str) -> Any:
        rel = part.rels.get(rel_id)
        if rel is None or rel.is_external:
            return None
        return getattr(rel.target_part, "element", None)

    return root


def _check_docx_zip(data: bytes) -> int | None:
    """Refuse a DOCX whose zip is corrupt, lacks the document or would unpack too large (before
    python-docx unpacks it); returns the page count Word saved, if any."""
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as zf:
            names = set(zf.namelist())
            if "word/document.xml" not in names:
                raise ItemError("not a valid DOCX (no word/document.xml)")
            for info in zf.infolist():
                if info.file_size > _MAX_XML:
                    raise ItemError(f"DOCX is too large ({info.filename} over 256 MiB)")
            return _docx_app_pages(zf) if "docProps/app.xml" in names else None
    except zipfile.BadZipFile:
        raise ItemError("not a valid DOCX (corrupt zip)") from None


def _docx_app_pages(zf: zipfile.ZipFile) -> int | None:
    match = re.search(rb"<(?:\w+:)?Pages>(\d+)</", zf.read("docProps/app.xml")[:65536])
    return int(match.group(1)) if match and int(match.group(1)) > 0 else None
