"""workers/pdf.py, the product's one PDF stack: reading text (hyphenation, shadowed letters, form
fields), bookmarks, text PDFium cannot read, broken pages; on PDFs made on the spot."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from workers.pdf import OutlineItem, PdfError, open_pdf

try:
    from pdf_fixtures import broken_page_pdf, lines_pdf, reportlab_pdf, vertical_cjk_pdf
except ImportError:  # tests/ became a package
    from tests.pdf_fixtures import broken_page_pdf, lines_pdf, reportlab_pdf, vertical_cjk_pdf


def test_open_a_path_or_bytes(tmp_path: Path) -> None:
    data = lines_pdf(["Opened from bytes"])
    (tmp_path / "a.pdf").write_bytes(data)
    for source in (data, tmp_path / "a.pdf", str(tmp_path / "a.pdf")):
        with open_pdf(source) as doc:
            assert doc.page_count == 1 and doc.page(0).reading_text() == "Opened from bytes"
    with pytest.raises(PdfError, match=r"^cannot open the PDF \(data format error\)$") as info:
        open_pdf(b"%PDF-1.4\n" + b"garbage " * 100)
    assert info.value.reason == "data format error"


def test_reading_text_joins_a_word_hyphenated_across_lines() -> None:
    data = lines_pdf(["The extraction of infor-", "mation works across lines."])
    with open_pdf(data) as doc:
        assert "\ufffe" in doc.page(0).text()  # PDFium's mark for the hyphen it joined
        assert doc.page(0).reading_text() == "The extraction of information works across lines."


def _shadowed(c: Any) -> None:
    """'Municipality' with every letter drawn twice, 1 pt apart (a drop shadow), each letter its own
    text object scaled by its matrix, as in pdfminer's issue-1008 sample."""
    from reportlab.pdfbase.pdfmetrics import stringWidth

    x = 72.0
    for char in "Municipality":
        for dx, dy in ((0.0, 0.0), (0.96, -0.96)):
            text = c.beginText()
            text.setFont("Helvetica", 1)
            text.setTextTransform(10.08, 0, 0, 10.08, x + dx, 700 + dy)
            text.textOut(char)
            c.drawText(text)
        x += stringWidth(char, "Helvetica", 10.08)
    c.setFont("Helvetica", 10)
    c.drawString(72, 680, "Mississippi bookkeeper committee: all 11 000 illicit")


def test_reading_text_keeps_a_letter_drawn_twice_in_one_place_once() -> None:
    with open_pdf(reportlab_pdf(_shadowed)) as doc:
        page = doc.page(0)
        assert page.text().startswith("MMuunniicciippaalliittyy")  # what PDFium alone gives
        assert page.reading_text() == "Municipality\nMississippi bookkeeper committee: all 11 000 illicit"


def _form(c: Any) -> None:
    c.setFont("Helvetica", 11)
    c.drawString(72, 760, "City:")
    c.acroForm.textfield(name="city", value="Springfield", x=120, y=752, width=200, height=20)


def test_form_fields_are_text_only_when_annotations_are_asked_for() -> None:
    data = reportlab_pdf(_form)
    with open_pdf(data) as doc:
        assert doc.page(0).reading_text() == "City:"  # the statements task's view: page content only
    with open_pdf(data, annotations=True) as doc:
        assert doc.page(0).reading_text() == "City:\nSpringfield"


def _bookmarked(c: Any) -> None:
    c.setFont("Helvetica", 11)
    c.drawString(72, 760, "Introduction")
    c.bookmarkPage("intro")
    c.addOutlineEntry("Introduction", "intro", level=0)
    c.showPage()
    c.drawString(72, 760, "Results")
    c.bookmarkPage("results")
    c.addOutlineEntry("Results  in detail", "results", level=1)


def test_outline_lists_bookmarks_with_level_and_page_and_none_without() -> None:
    with open_pdf(reportlab_pdf(_bookmarked)) as doc:
        assert doc.outline() == [OutlineItem(0, "Introduction", 0), OutlineItem(1, "Results in detail", 1)]
    with open_pdf(lines_pdf(["no bookmarks"])) as doc:
        assert doc.outline() == []


def test_vertical_cjk_text_in_a_missing_font_is_reported() -> None:
    with open_pdf(vertical_cjk_pdf()) as doc:
        page = doc.page(0)
        if page.reading_text():  # this machine has a Japanese font PDFium can use instead
            assert page.unreadable_text_objects() == 0
        else:
            assert page.unreadable_text_objects() == 12
    with open_pdf(lines_pdf(["Plain Helvetica text, nothing lost"])) as doc:
        assert doc.page(0).unreadable_text_objects() == 0


def test_a_broken_page_raises_pdf_error_and_the_others_read() -> None:
    with open_pdf(broken_page_pdf()) as doc:
        assert doc.page_count == 3
        assert doc.page(0).reading_text() == "First page"
        with pytest.raises(PdfError, match=r"^cannot read page 2 of the PDF$"):
            doc.page(1)
        assert doc.page(2).reading_text() == "Third page"


def test_close_page_frees_it_and_page_reopens_it() -> None:
    with open_pdf(lines_pdf(["one"], ["two"])) as doc:
        first = doc.page(0)
        assert first.reading_text() == "one"
        doc.close_page(0)
        doc.close_page(0)  # closing twice is harmless
        again = doc.page(0)
        assert again is not first and again.reading_text() == "one"
