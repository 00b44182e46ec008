"""PDFs for the tests, made on the spot: with ReportLab (text, form fields, bookmarks, encryption,
images) or written object by object (fonts ReportLab will not write: vertical CJK text without an
embedded font, a ToUnicode map to private-use code points, a broken page). Not a conftest: import it."""

from __future__ import annotations

import io
from collections.abc import Callable
from typing import Any

PAGE = (b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] /Resources << /Font << /F1 5 0 R >> >>"
        b" /Contents %d 0 R >>")


def reportlab_pdf(draw: Callable[[Any], None], **canvas_args: Any) -> bytes:
    """A PDF drawn by ``draw(canvas)`` (A4; call ``canvas.showPage()`` between pages)."""
    from reportlab.pdfgen import canvas

    buf = io.BytesIO()
    c = canvas.Canvas(buf, pagesize=(595, 842), invariant=1, **canvas_args)
    draw(c)
    c.showPage()
    c.save()
    return buf.getvalue()


def lines_pdf(*pages: list[str], **canvas_args: Any) -> bytes:
    """Pages of Helvetica 11 lines, top down."""

    def draw(c: Any) -> None:
        for number, lines in enumerate(pages):
            if number:
                c.showPage()
            c.setFont("Helvetica", 11)
            for index, line in enumerate(lines):
                c.drawString(72, 760 - 16 * index, line)

    return reportlab_pdf(draw, **canvas_args)


def stream(data: bytes) -> bytes:
    return b"<< /Length %d >>\nstream\n" % len(data) + data + b"\nendstream"


def build_pdf(objects: dict[int, bytes]) -> bytes:
    """A PDF of numbered objects (1 must be the catalog), with a correct cross-reference table."""
    out = bytearray(b"%PDF-1.7\n")
    offsets = {}
    for oid in sorted(objects):
        offsets[oid] = len(out)
        out += b"%d 0 obj\n" % oid + objects[oid] + b"\nendobj\n"
    xref, size = len(out), max(objects) + 1
    out += b"xref\n0 %d\n0000000000 65535 f \n" % size
    out += b"".join(b"%010d 00000 n \n" % offsets.get(oid, 0) for oid in range(1, size))
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (size, xref)
    return bytes(out)


def one_page_pdf(content: bytes, fonts: dict[int, bytes]) -> bytes:
    """One A4 page drawing ``content`` with font /F1 = object 5 (``fonts``: objects 5 and up)."""
    return build_pdf({
        1: b"<< /Type /Catalog /Pages 2 0 R >>",
        2: b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        3: PAGE % 4,
        4: stream(content),
        **fonts,
    })


def vertical_cjk_pdf(lines: int = 12) -> bytes:
    """Japanese set vertically (Identity-V) in Ryumin-Light, a font the PDF does not embed: PDFium
    reads it only where a Japanese font is installed."""
    fonts = {
        5: b"<< /Type /Font /Subtype /Type0 /BaseFont /Ryumin-Light /Encoding /Identity-V /DescendantFonts [6 0 R] >>",
        6: b"<< /Type /Font /Subtype /CIDFontType0 /BaseFont /Ryumin-Light /FontDescriptor 7 0 R"
           b" /CIDSystemInfo << /Registry (Adobe) /Ordering (Japan1) /Supplement 2 >> >>",
        7: b"<< /Type /FontDescriptor /FontName /Ryumin-Light /Flags 6 /FontBBox [0 -141 1000 859] /ItalicAngle 0"
           b" /Ascent 859 /Descent -141 /CapHeight 700 /StemV 80 >>",
    }
    content = b"".join(b"BT /F1 12 Tf %d 760 Td <0353034B034F035F03AD> Tj ET\n" % (520 - 20 * i) for i in range(lines))
    return one_page_pdf(content, fonts)


def private_use_pdf(text: bytes) -> bytes:
    """``text`` in Helvetica whose ToUnicode map sends every character to the private-use area
    (what a symbol font's text extracts as)."""
    cmap = (b"/CIDInit /ProcSet findresource begin 12 dict begin begincmap /CMapName /PUA def /CMapType 2 def\n"
            b"1 begincodespacerange <00> <FF> endcodespacerange\n"
            b"1 beginbfrange <20> <7E> <E020> endbfrange\n"
            b"endcmap CMapName currentdict /CMap defineresource pop end end")
    fonts = {
        5: b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica /Encoding /WinAnsiEncoding /ToUnicode 6 0 R >>",
        6: stream(cmap),
    }
    return one_page_pdf(b"BT /F1 11 Tf 72 760 Td (" + text + b") Tj ET", fonts)


def broken_page_pdf() -> bytes:
    """Three pages, the second not a page at all (a number where the page dictionary should be)."""
    return build_pdf({
        1: b"<< /Type /Catalog /Pages 2 0 R >>",
        2: b"<< /Type /Pages /Kids [3 0 R 8 0 R 6 0 R] /Count 3 >>",
        3: PAGE % 4,
        4: stream(b"BT /F1 11 Tf 72 760 Td (First page) Tj ET"),
        5: b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica /Encoding /WinAnsiEncoding >>",
        6: PAGE % 7,
        7: stream(b"BT /F1 11 Tf 72 760 Td (Third page) Tj ET"),
        8: b"42",
    })
