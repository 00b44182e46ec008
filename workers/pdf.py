"""The product's one PDF stack: PDFium through pypdfium2 (text with word positions, metadata).

    with open_pdf(path) as doc:
        for page in doc.pages():
            page.words()   # [Word(x0, y0, x1, y1, text)] in reading order, PDF units, origin bottom-left
            page.text()    # the page's text as PDFium lays it out
        doc.metadata       # title, author, subject, creator, producer, created, modified (ISO 8601)
        doc.has_text_layer()  # False for a scanned document (images, no text)

Words are built from PDFium's (loose) character boxes: a whitespace character or a gap wider than a
fraction of the font size ends a word, so table cells placed side by side without spaces stay
apart. A document encrypted with an empty user password opens; one that needs a password
raises :class:`PdfPasswordError`; anything PDFium cannot open raises :class:`PdfError`.

PDFium is not thread-safe: use one document from one thread (a task runs one item per process).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Self

import pypdfium2 as pdfium
import pypdfium2.raw as pdfium_c

WORD_GAP = 0.15  # a gap wider than this many font sizes between two characters splits a word
_LINE_JUMP = 0.5  # a baseline moved by more than this many font sizes starts a new word


class PdfError(Exception):
    """A PDF that cannot be read; the message says why in a few words."""


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

    def _read(self) -> None:
        textpage = self._page.get_textpage()
        try:
            self._text = textpage.get_text_range()
            self._words = _words_of(textpage)
        finally:
            textpage.close()

    def close(self) -> None:
        self._page.close()


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

    def __init__(self, doc: pdfium.PdfDocument) -> None:
        self._doc = doc
        self._pages: dict[int, PdfPage] = {}
        self.page_count = len(doc)

    def page(self, index: int) -> PdfPage:
        """The page at 0-based ``index``."""
        if index not in self._pages:
            self._pages[index] = PdfPage(self._doc[index], index + 1)
        return self._pages[index]

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


def open_pdf(path: str | Path) -> PdfDocument:
    """Open a PDF file; raises PdfPasswordError or PdfError with a reason a person can read."""
    try:
        doc = pdfium.PdfDocument(Path(path))
    except pdfium.PdfiumError as exc:
        message = str(exc)
        if "password" in message.lower():
            raise PdfPasswordError("the PDF is password-protected") from None
        reason = re.sub(r"^Failed to load document \(PDFium: (.*?)\.?\)\.?$", r"\1", message)
        raise PdfError(f"cannot open the PDF ({reason.lower()})") from None
    except OSError as exc:
        raise PdfError(f"cannot read the PDF: {exc.strerror or exc}") from None
    return PdfDocument(doc)
