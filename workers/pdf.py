"""The product's one PDF stack: PDFium through pypdfium2 (text with word positions, metadata).

    with open_pdf(path) as doc:          # a path, or the file's bytes
        for page in doc.pages():
            page.words()   # [Word(x0, y0, x1, y1, text)] in reading order, PDF units, origin bottom-left
            page.text()    # the page's text as PDFium lays it out
        doc.metadata       # title, author, subject, creator, producer, created, modified (ISO 8601)
        doc.has_text_layer()  # False for a scanned document (images, no text)
        doc.outline()      # the bookmarks: [OutlineItem(level, title, page)]

    with open_pdf(path, annotations=True) as doc:  # form fields and annotations become page text
        page.reading_text()            # text for reading and search (hyphenation undone, fake bold once)
        page.unreadable_text_objects()  # text PDFium could not read (a font neither embedded nor installed)

Words are built from PDFium's (loose) character boxes: a whitespace character or a gap wider than a
fraction of the font size ends a word, so table cells placed side by side without spaces stay
apart. A document encrypted with an empty user password opens; one that needs a password
raises :class:`PdfPasswordError`; anything PDFium cannot open raises :class:`PdfError`.

PDFium is not thread-safe: use one document from one thread (a task runs one item per process).
"""

from __future__ import annotations

import ctypes
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any, Self

import pypdfium2 as pdfium
import pypdfium2.raw as pdfium_c

WORD_GAP = 0.15  # a gap wider than this many font sizes between two characters splits a word
_LINE_JUMP = 0.5  # a baseline moved by more than this many font sizes starts a new word
_JOINED_HYPHEN = "\ufffe"  # PDFium's mark for a line-end hyphen whose word it joined across the break
_DOUBLED = re.compile(r"(\S)\1")  # a letter twice in a row: "ll" in "all", or a shadow drawing "MMuunn"
_SAME_PLACE = 0.5  # a repeated letter moved by less than this share of its box (across and up) is drawn twice
MAX_OUTLINE = 5000  # bookmarks read at most (a hostile file may have millions)
_MAX_OBJECTS = 200_000  # page objects looked at, at most, when checking a page for unreadable text
_FORM_DEPTH = 4  # form XObjects nested deeper than this are not looked into


class PdfError(Exception):
    """A PDF that cannot be read; the message says why in a few words, ``reason`` in fewer."""

    def __init__(self, message: str, reason: str = "") -> None:
        super().__init__(message)
        self.reason = reason or message


class PdfPasswordError(PdfError):
    """The PDF needs a password to open."""


@dataclass(frozen=True)
class Word:
    """A word and its box in PDF units (points), origin at the page's bottom-left corner."""

    x0: float
    y0: float
    x1: float
    y1: float
    text: str


@dataclass(frozen=True)
class OutlineItem:
    """A bookmark: its depth (0 = top level), title and the 0-based page it opens (None: no page)."""

    level: int
    title: str
    page: int | None


class _WordBuilder:
    """Collects characters into words."""

    def __init__(self) -> None:
        self.words: list[Word] = []
        self._chars: list[str] = []
        self._box = (0.0, 0.0, 0.0, 0.0)
        self._size = 0.0

    def end(self) -> None:
        if self._chars:
            x0, y0, x1, y1 = self._box
            self.words.append(Word(x0, y0, x1, y1, "".join(self._chars)))
            self._chars = []

    def add(self, char: str, box: tuple[float, float, float, float], size: float) -> None:
        if self._chars:
            x0, y0, x1, y1 = self._box
            limit = max(self._size, size, 1.0)
            if box[0] - x1 > WORD_GAP * limit or box[2] < x0 or abs(box[1] - y0) > _LINE_JUMP * limit:
                self.end()
        if not self._chars:
            self._box, self._size = box, size
        else:
            x0, y0, x1, y1 = self._box
            self._box = (min(x0, box[0]), min(y0, box[1]), max(x1, box[2]), max(y1, box[3]))
            self._size = max(self._size, size)
        self._chars.append(char)


class PdfPage:
    """One page: its size, words and text (read once, on first use)."""

    def __init__(self, page: pdfium.PdfPage, number: int) -> None:
        self._page = page
        self.number = number  # 1-based
        self.width, self.height = page.get_size()
        self._words: list[Word] | None = None
        self._text: str | None = None
        self._reading: str | None = None

    def words(self) -> list[Word]:
        """Every word on the page with its box, in PDFium's reading order."""
        if self._words is None:
            self._read()
        assert self._words is not None
        return self._words

    def text(self) -> str:
        """The page's text as PDFium lays it out (lines end with CRLF as PDFium writes them)."""
        if self._text is None:
            self._read()
        assert self._text is not None
        return self._text

    def has_text(self) -> bool:
        return bool(self.words())

    def image_count(self) -> int:
        """Images drawn on the page (a scanned page is one image and no text)."""
        return sum(1 for _ in self._page.get_objects(filter=(pdfium_c.FPDF_PAGEOBJ_IMAGE,), max_depth=2))

    def _textpage(self) -> pdfium.PdfTextPage:
        try:
            return self._page.get_textpage()
        except pdfium.PdfiumError:
            raise PdfError(f"cannot read the text of page {self.number}", "a broken page") from None

    def _read(self) -> None:
        textpage = self._textpage()
        try:
            self._text = textpage.get_text_range()
            self._words = _words_of(textpage)
        finally:
            textpage.close()

    def reading_text(self) -> str:
        """The page's text for reading and search: PDFium's layout with ``\\n`` line ends, a word it
        found hyphenated across a line end joined again, and a letter drawn twice in (nearly) one
        place, for a shadow or fake bold, kept once."""
        if self._reading is None:
            textpage = self._textpage()
            try:
                text = textpage.get_text_range()
                if len(text) == textpage.count_chars():  # one character per index: boxes can be asked
                    text = _undouble(textpage.raw, text)
            finally:
                textpage.close()
            self._reading = text.replace(_JOINED_HYPHEN, "").replace("\r\n", "\n")
        return self._reading

    def unreadable_text_objects(self) -> int:
        """How many text objects on the page yield no text because PDFium could not load their font
        (neither embedded nor installed: typically a Chinese, Japanese or Korean font); 0 when the
        page's text looks complete. A text object so affected has no width."""
        chars = len("".join(self.reading_text().split()))
        if pdfium_c.FPDFPage_CountObjects(self._page.raw) * 2 <= chars:
            return 0  # plenty of text for the objects the page has
        total, blank = _text_objects(self._page.raw)
        if blank >= 10 and blank * 2 >= total and blank > chars:  # more lost than read
            return blank
        return 0

    def close(self) -> None:
        self._page.close()


def _undouble(handle: Any, text: str) -> str:
    """``text`` without the second copy of letters drawn twice in (nearly) the same place."""
    drop = {m.start() + 1 for m in _DOUBLED.finditer(text) if _same_place(handle, m.start(), m.start() + 1)}
    if not drop:
        return text
    return "".join(char for index, char in enumerate(text) if index not in drop)


def _same_place(handle: Any, first: int, second: int) -> bool:
    """Whether two characters are one letter drawn twice: the second starts at about the first's
    place, and they come from two text objects (a ligature's letters share one object and one box)."""
    a, b = pdfium_c.FS_RECTF(), pdfium_c.FS_RECTF()
    box = pdfium_c.FPDFText_GetLooseCharBox
    if not (box(handle, first, a) and box(handle, second, b)):
        return False
    width, height = max(a.right - a.left, 0.1), max(a.top - a.bottom, 0.1)
    if abs(b.left - a.left) >= _SAME_PLACE * width or abs(b.bottom - a.bottom) >= _SAME_PLACE * height:
        return False  # one after the other: "ll" in "all"
    objects = pdfium_c.FPDFText_GetTextObject(handle, first), pdfium_c.FPDFText_GetTextObject(handle, second)
    return _address(objects[0]) != _address(objects[1])


def _address(pointer: Any) -> int | None:
    return ctypes.cast(pointer, ctypes.c_void_p).value


def _text_objects(page: Any) -> tuple[int, int]:
    """(text objects, those without width whose font is not embedded) on a page, form XObjects included."""
    left, bottom, right, top = (ctypes.c_float() for _ in range(4))
    counts = [0, 0]
    stack = [(page, pdfium_c.FPDFPage_CountObjects, pdfium_c.FPDFPage_GetObject, 0)]
    seen = 0
    while stack and seen < _MAX_OBJECTS:
        holder, count, get, depth = stack.pop()
        for index in range(count(holder)):
            obj = get(holder, index)
            kind = pdfium_c.FPDFPageObj_GetType(obj)
            seen += 1
            if kind == pdfium_c.FPDF_PAGEOBJ_TEXT:
                counts[0] += 1
                pdfium_c.FPDFPageObj_GetBounds(obj, left, bottom, right, top)
                if right.value <= left.value and not pdfium_c.FPDFFont_GetIsEmbedded(pdfium_c.FPDFTextObj_GetFont(obj)):
                    counts[1] += 1
            elif kind == pdfium_c.FPDF_PAGEOBJ_FORM and depth < _FORM_DEPTH:
                stack.append((obj, pdfium_c.FPDFFormObj_CountObjects, pdfium_c.FPDFFormObj_GetObject, depth + 1))
    return counts[0], counts[1]


def _words_of(textpage: pdfium.PdfTextPage) -> list[Word]:
    """Words from the characters' loose boxes (the font's full advance and height: consecutive
    letters touch, and one line's boxes share a bottom, unlike the tight glyph boxes)."""
    handle = textpage.raw
    rect = pdfium_c.FS_RECTF()
    builder = _WordBuilder()
    for index in range(pdfium_c.FPDFText_CountChars(handle)):
        code = pdfium_c.FPDFText_GetUnicode(handle, index)
        char = chr(code) if 0 < code < 0x110000 else " "
        if char.isspace() or char == "\x00" or code == 0xFFFE:
            builder.end()
            continue
        if not pdfium_c.FPDFText_GetLooseCharBox(handle, index, rect):
            continue
        size = pdfium_c.FPDFText_GetFontSize(handle, index)
        builder.add(char, (rect.left, rect.bottom, rect.right, rect.top), size)
    builder.end()
    return builder.words


_PDF_DATE = re.compile(r"^D?:?(\d{4})(\d{2})?(\d{2})?(\d{2})?(\d{2})?(\d{2})?([Zz+\-])?(\d{2})?'?(\d{2})?'?")


def pdf_date(value: str) -> str | None:
    """'D:20240301120000+01'00'' -> '2024-03-01T12:00:00+01:00'; None when it is not a PDF date."""
    m = _PDF_DATE.match(value.strip())
    if not m:
        return None
    year, month, day, hour, minute, second, zone, zh, zm = m.groups()
    text = f"{year}-{month or '01'}-{day or '01'}T{hour or '00'}:{minute or '00'}:{second or '00'}"
    if zone in ("Z", "z"):
        return text + "+00:00"
    if zone in ("+", "-"):
        return f"{text}{zone}{zh or '00'}:{zm or '00'}"
    return text


class PdfDocument:
    """An open PDF (use :func:`open_pdf`); a context manager that closes every handle."""

    def __init__(self, doc: pdfium.PdfDocument, annotations: bool = False) -> None:
        self._doc = doc
        self._pages: dict[int, PdfPage] = {}
        self._annotations = annotations
        if annotations:
            doc.init_forms()  # before any page loads: form fields get their appearance
        self.page_count = len(doc)

    def page(self, index: int) -> PdfPage:
        """The page at 0-based ``index``; PdfError when PDFium cannot load it."""
        if index not in self._pages:
            try:
                self._pages[index] = PdfPage(self._load(index), index + 1)
            except pdfium.PdfiumError:
                raise PdfError(f"cannot read page {index + 1} of the PDF", "a broken page") from None
        return self._pages[index]

    def _load(self, index: int) -> pdfium.PdfPage:
        """A page; opened with ``annotations``, its annotations (form fields, notes, stamps) are
        flattened into its content first, so their text is page text."""
        page = self._doc[index]
        if self._annotations and pdfium_c.FPDFPage_GetAnnotCount(page.raw) > 0:
            flattened = pdfium_c.FPDFPage_Flatten(page.raw, pdfium_c.FLAT_NORMALDISPLAY) == pdfium_c.FLATTEN_SUCCESS
            if flattened:  # PDFium's rule: reload a page after flattening it
                page.close()
                page = self._doc[index]
        return page

    def pages(self) -> Iterator[PdfPage]:
        for index in range(self.page_count):
            yield self.page(index)

    @property
    def metadata(self) -> dict[str, str | None]:
        """title, author, subject, creator, producer (None when empty) and created / modified as ISO 8601."""
        raw = self._doc.get_metadata_dict(skip_empty=True)
        meta: dict[str, str | None] = {
            key.lower(): (str(raw.get(key) or "").strip() or None)
            for key in ("Title", "Author", "Subject", "Creator", "Producer")
        }
        meta["created"] = pdf_date(str(raw.get("CreationDate", "")))
        meta["modified"] = pdf_date(str(raw.get("ModDate", "")))
        return meta

    def close_page(self, index: int) -> None:
        """Free a page read (a long document need not keep every page open); page() reopens it."""
        page = self._pages.pop(index, None)
        if page is not None:
            page.close()

    def outline(self) -> list[OutlineItem]:
        """The document's bookmarks in order (at most MAX_OUTLINE; none when they cannot be read)."""
        items: list[OutlineItem] = []
        try:
            for mark in self._doc.get_toc():
                if len(items) >= MAX_OUTLINE:
                    break
                title = " ".join((mark.get_title() or "").split())
                dest = mark.get_dest()
                page = dest.get_index() if dest is not None else None
                if title:
                    items.append(OutlineItem(mark.level, title, page if page is not None and page >= 0 else None))
        except (pdfium.PdfiumError, ValueError):
            pass  # a broken outline is no reason to lose the text
        return items

    def has_text_layer(self) -> bool:
        """Whether any page has text (False for a scan without OCR)."""
        return any(page.has_text() for page in self.pages())

    def close(self) -> None:
        for page in self._pages.values():
            page.close()
        self._pages.clear()
        self._doc.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


def open_pdf(source: str | Path | bytes, annotations: bool = False) -> PdfDocument:
    """Open a PDF file (its path, or its bytes); raises PdfPasswordError or PdfError with a reason a
    person can read. ``annotations``: form fields and annotations are read as page text too."""
    try:
        doc = pdfium.PdfDocument(source if isinstance(source, bytes) else Path(source))
    except pdfium.PdfiumError as exc:
        message = str(exc)
        if "password" in message.lower():
            raise PdfPasswordError("the PDF is password-protected") from None
        reason = re.sub(r"^Failed to load document \(PDFium: (.*?)\.?\)\.?$", r"\1", message).lower()
        raise PdfError(f"cannot open the PDF ({reason})", reason) from None
    except OSError as exc:
        raise PdfError(f"cannot read the PDF: {exc.strerror or exc}") from None
    try:
        return PdfDocument(doc, annotations)
    except pdfium.PdfiumError as exc:
        doc.close()
        raise PdfError(f"cannot open the PDF ({exc})", str(exc)) from None
