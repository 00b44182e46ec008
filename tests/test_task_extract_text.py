"""extract-text on real documents: PDF, DOCX, HTML, Markdown, TXT (several encodings), JSON, CSV,
and on broken ones (encrypted, corrupt, truncated, empty, binary, wrong encoding)."""

from __future__ import annotations

import io
import json
import zipfile
from itertools import pairwise
from pathlib import Path
from typing import Any

import pytest

from workers import registry
from workers.registry import ItemError, TaskContext, TaskError
from workers.tasks._common import output_file
from workers.tasks.extract_text import extract_document
from workers.tasks.extract_text.chunks import chunk_spans

try:
    from conftest_tasks import SAMPLES, make_samples_module, run_job, run_task
    from pdf_fixtures import broken_page_pdf, lines_pdf, private_use_pdf, reportlab_pdf, vertical_cjk_pdf
except ImportError:  # tests/ became a package
    from tests.conftest_tasks import SAMPLES, make_samples_module, run_job, run_task
    from tests.pdf_fixtures import broken_page_pdf, lines_pdf, private_use_pdf, reportlab_pdf, vertical_cjk_pdf


def extract(tmp_path: Path, name: str, data: bytes, **opts):
    src = tmp_path / "src"
    target = src / name
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_bytes(data)
    out = tmp_path / "out"
    result = run_task("extract-text", target, src, out, **opts)
    text = (out / result["text_path"]).read_text(encoding="utf-8")
    assert text == "" or text.endswith("\n")  # a POSIX text file: the text plus one newline
    text = text[:-1] if text else text
    chunks = [json.loads(line) for line in (out / result["chunks_path"]).read_text(encoding="utf-8").splitlines()]
    return result, text, chunks


def failure(tmp_path: Path, name: str, data: bytes, **opts) -> str:
    with pytest.raises(ItemError) as info:
        extract(tmp_path, name, data, **opts)
    return str(info.value)


# --------------------------------------------------------------------------------------------
# PDF
# --------------------------------------------------------------------------------------------

QUARTERLY = SAMPLES / "documents" / "quarterly-report-q1-2024.pdf"


def test_pdf_text_pages_metadata_and_chunks(tmp_path: Path) -> None:
    result, text, chunks = extract(tmp_path, "reports/q1 report.pdf", QUARTERLY.read_bytes(), chunk_size="300",
                                   chunk_overlap="60")
    assert "Revenue for the first quarter reached 412,800 EUR, up 9 percent on the same" in text
    assert "Sign the two-year bottle supply contract before 30 April." in text
    assert "café opening hours" in text  # WinAnsi-encoded é survives
    assert result["format"] == "pdf"
    assert result["pages"] == 2
    assert result["title"] == "Quarterly Report Q1 2024"
    assert result["author"] == "Northwind Orchards finance team"
    assert result["created"].startswith("2024-04-15T09:00:00")
    assert result["words"] == len(text.split())
    assert result["chars"] == len(text)
    assert result["encoding"] is None
    assert result["text_path"] == "reports/q1 report.pdf.txt"
    assert result["chunks_path"] == "reports/q1 report.pdf.chunks.jsonl"
    assert result["chunks"] == len(chunks) >= 4
    assert all(len(c["text"]) <= 300 for c in chunks)
    assert [c["chunk"] for c in chunks] == list(range(len(chunks)))
    assert chunks[0]["id"] == "reports/q1 report.pdf#0" and chunks[0]["source"] == "reports/q1 report.pdf"
    assert chunks[0]["page"] == 1 and chunks[-1]["page"] == 2
    for c in chunks:
        assert text[c["start"]:c["end"]] == c["text"]
    for a, b in pairwise(chunks):
        assert b["start"] < a["end"]  # consecutive chunks overlap
    outlook = text.index("Outlook for Q2")
    for c in chunks:
        assert c["page"] == (1 if c["start"] < outlook else 2)
        assert c["page_end"] == (1 if c["end"] <= outlook else 2)
    assert any(c["page"] == 1 and c["page_end"] == 2 for c in chunks)  # one chunk spans the break


def test_pdf_built_by_hand(tmp_path: Path) -> None:
    ms = make_samples_module()
    page = [("h1", "Gamma (test) \\ report"), ("p", "Line with a backslash \\ and parens (ok).")]
    pdf = ms.make_pdf([page], "T", "A", "20240101000000")
    result, text, _ = extract(tmp_path, "x.pdf", pdf)
    assert "Gamma (test) \\ report" in text
    assert "Line with a backslash \\ and parens (ok)." in text
    assert result["pages"] == 1


def _encrypted(user_password: str, strength: int = 128) -> bytes:
    """Two pages encrypted by ReportLab: RC4 (40 or 128 bits) or AES-256 (``strength`` 256)."""
    from reportlab.lib.pdfencrypt import StandardEncryption

    encrypt = StandardEncryption(user_password, ownerPassword="owner-only", strength=strength)
    return lines_pdf(["Revenue for the first quarter reached 412,800 EUR."], ["Outlook for Q2"], encrypt=encrypt)


def test_encrypted_pdf_fails_with_a_clear_reason(tmp_path: Path) -> None:
    assert failure(tmp_path, "secret.pdf", _encrypted("s3cret")) == "PDF is encrypted (password required)"
    assert failure(tmp_path, "aes.pdf", _encrypted("s3cret", 256)) == "PDF is encrypted (password required)"


@pytest.mark.parametrize("strength", [40, 128, 256])
def test_pdf_with_only_an_owner_password_is_read(tmp_path: Path, strength: int) -> None:
    """RC4 and AES (which pypdf read only with the cryptography package installed) alike."""
    data = _encrypted("", strength)
    assert (b"/AESV3" in data) == (strength == 256)
    result, text, _ = extract(tmp_path, "locked.pdf", data)
    assert text == "Revenue for the first quarter reached 412,800 EUR.\n\nOutlook for Q2"
    assert result["pages"] == 2 and "warnings" not in result


def test_corrupt_truncated_and_empty_pdfs(tmp_path: Path) -> None:
    data = QUARTERLY.read_bytes()
    assert failure(tmp_path, "a.pdf", b"this is not a pdf at all\n" * 10) == "not a valid PDF (no %PDF header)"
    reason = failure(tmp_path, "b.pdf", data[: len(data) // 2])
    assert reason.startswith("not a valid PDF (truncated")
    reason = failure(tmp_path, "c.pdf", b"%PDF-1.4\n" + bytes(range(256)) * 8 + b"\n%%EOF\n")
    assert reason.startswith("not a valid PDF (")
    assert failure(tmp_path, "d.pdf", b"") == "empty file (0 bytes)"


def test_pdf_without_text_layer_is_done_with_a_warning(tmp_path: Path) -> None:
    result, text, chunks = extract(tmp_path, "scan.pdf", reportlab_pdf(lambda c: None))
    assert text == "" and chunks == []
    assert result["words"] == 0 and result["pages"] == 1
    assert result["warnings"] == ["no text layer (a scanned PDF needs OCR)"]


def _image(c: Any) -> None:
    from PIL import Image
    from reportlab.lib.utils import ImageReader

    c.drawImage(ImageReader(Image.new("L", (60, 80), 200)), 72, 300, 450, 500)


def _report_with_a_form(c: Any) -> None:
    """Three pages: bookmarked headings, a filled-in form field, a scanned page (an image, no text)."""
    c.setFont("Helvetica-Bold", 14)
    c.drawString(72, 760, "1. Summary of the year")
    c.bookmarkPage("summary")
    c.addOutlineEntry("1. Summary of the year", "summary", level=0)
    c.setFont("Helvetica", 11)
    c.drawString(72, 740, "Sales grew in every region.")
    c.drawString(72, 700, "Approved by:")
    c.acroForm.textfield(name="approver", value="Dana Whitfield", x=160, y=692, width=200, height=20)
    c.showPage()
    _image(c)
    c.showPage()
    c.setFont("Helvetica-Bold", 14)
    c.drawString(72, 760, "2. Outlook")
    c.bookmarkPage("outlook")
    c.addOutlineEntry("2. Outlook", "outlook", level=0)
    c.bookmarkPage("appendix")
    c.addOutlineEntry("Appendix (not in the text)", "appendix", level=1)
    c.setFont("Helvetica", 11)
    c.drawString(72, 740, "Steady.")
    c.setTitle("Annual report")
    c.setAuthor("Finance")


def test_pdf_form_fields_bookmarks_and_scanned_pages(tmp_path: Path) -> None:
    result, text, chunks = extract(tmp_path, "report.pdf", reportlab_pdf(_report_with_a_form))
    assert text == ("1. Summary of the year\nSales grew in every region.\nApproved by:\nDana Whitfield\n\n"
                    "2. Outlook\nSteady.")
    assert result["pages"] == 3
    assert result["warnings"] == ["no text layer on page 2 (scanned pages need OCR)"]
    assert (result["title"], result["author"]) == ("Annual report", "Finance")
    assert result["created"] == result["modified"] == "2000-01-01T00:00:00+00:00"  # ReportLab's invariant mode
    assert [c["page"] for c in chunks] == [1]
    _fmt, extracted = extract_document(tmp_path / "src" / "report.pdf")
    outlook = text.index("2. Outlook")
    assert extracted.page_starts == [0, outlook - 2, outlook]  # page 2 has no text: it ends page 1
    assert extracted.headings == [(0, "1. Summary of the year"), (outlook, "2. Outlook"),
                                  (outlook, "Appendix (not in the text)")]  # not on its page: the page's start


def test_pdf_text_in_a_font_neither_embedded_nor_installed_is_warned(tmp_path: Path) -> None:
    result, text, _ = extract(tmp_path, "kampo.pdf", vertical_cjk_pdf())
    if text:  # this machine has a Japanese font PDFium can use instead
        assert "warnings" not in result
    else:
        assert result["warnings"] == [
            "text on page 1 could not be read: a font it uses is neither embedded nor installed "
            "(often a Chinese, Japanese or Korean font)"
        ]


def test_pdf_page_whose_text_is_garbage_is_warned(tmp_path: Path) -> None:
    good = lines_pdf(["A page of ordinary text, long enough to be judged by the garbage test."])
    result, _, _ = extract(tmp_path, "good.pdf", good)
    assert "warnings" not in result
    result, text, _ = extract(tmp_path, "symbols.pdf", private_use_pdf(b"The quick brown fox jumps over the lazy dog"))
    assert text[:3] == "\ue054\ue068\ue065"  # 'The' in the private-use area
    assert result["warnings"] == [
        "text on page 1 looks like garbage (unreadable characters (private-use, replacement or control characters))"
    ]


def test_pdf_broken_page_is_left_out_with_a_warning(tmp_path: Path) -> None:
    result, text, chunks = extract(tmp_path, "broken.pdf", broken_page_pdf())
    assert text == "First page\n\nThird page"
    assert result["pages"] == 3
    assert result["warnings"] == ["page 2 could not be read (broken)"]
    assert [(c["page"], c["page_end"]) for c in chunks] == [(1, 3)]


def test_pdf_reading_stops_at_the_time_budget(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from workers.tasks.extract_text import documents

    monkeypatch.setattr(documents, "PDF_SECONDS", 0.0)
    result, text, _ = extract(tmp_path, "q.pdf", QUARTERLY.read_bytes())
    assert "Revenue for the first quarter" in text and "Outlook for Q2" not in text  # page 1 only
    assert result["pages"] == 2
    assert result["warnings"] == ["stopped after page 1 of 2: reading took over 0 s"]


def test_page_list_joins_runs_of_pages_and_cuts_long_lists() -> None:
    from workers.tasks.extract_text.documents import page_list

    assert page_list([4]) == "page 4"
    assert page_list([1, 2, 3, 5, 7, 8]) == "pages 1-3, 5, 7-8"
    assert page_list(range(1, 40, 2), most=3) == "pages 1, 3, 5, ..."


# --------------------------------------------------------------------------------------------
# DOCX
# --------------------------------------------------------------------------------------------

HANDBOOK = SAMPLES / "documents" / "employee-handbook.docx"


def test_docx_text_tables_and_properties(tmp_path: Path) -> None:
    result, text, _ = extract(tmp_path, "hb.docx", HANDBOOK.read_bytes())
    lines = text.splitlines()
    assert lines[0] == "Northwind Orchards Employee Handbook"
    assert "The standard week is 38 hours." in text
    assert "Years of service | Holiday days | Notice needed" in lines
    assert "6 or more | 32 | 3 weeks" in lines
    assert text.index("Holidays") < text.index("0-2 | 28 | 2 weeks") < text.index("Safety")  # body order
    assert result["format"] == "docx"
    assert result["pages"] == 2  # from docProps/app.xml
    assert result["title"] == "Employee Handbook"
    assert result["author"] == "Northwind Orchards HR"
    assert result["created"].startswith("2024-02-01T09:00:00")


def test_docx_written_by_python_docx(tmp_path: Path) -> None:
    import docx

    document = docx.Document()
    document.add_heading("Release checklist", level=1)
    document.add_paragraph("Tag the build and attach the installers.")
    document.add_page_break()
    table = document.add_table(rows=2, cols=2)
    table.cell(0, 0).text, table.cell(0, 1).text = "Step", "Owner"
    table.cell(1, 0).text, table.cell(1, 1).text = "Sign binaries", "Dana"
    document.core_properties.title = ""
    buf = io.BytesIO()
    document.save(buf)
    result, text, _ = extract(tmp_path, "made.docx", buf.getvalue())
    assert "Release checklist" in text
    assert "Tag the build and attach the installers." in text
    assert "Sign binaries | Dana" in text
    assert result["pages"] == 2  # no saved page count: 1 + explicit page breaks
    assert result["title"] == "Release checklist"  # first paragraph when the property is empty


def test_truncated_corrupt_and_encrypted_docx(tmp_path: Path) -> None:
    data = HANDBOOK.read_bytes()
    assert failure(tmp_path, "t.docx", data[: len(data) // 2]) == "not a valid DOCX (corrupt zip)"
    assert failure(tmp_path, "t2.docx", data[:-30]) == "not a valid DOCX (corrupt zip)"
    assert failure(tmp_path, "n.docx", b"PK but not really a zip file" * 3) == "not a valid DOCX (corrupt zip)"
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("hello.txt", "no word document here")
    assert failure(tmp_path, "z.docx", buf.getvalue()) == "not a valid DOCX (no word/document.xml)"
    ole = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + bytes(600)
    assert failure(tmp_path, "e.docx", ole) == "DOCX is encrypted (password-protected) or a legacy .doc file"
    # a zip whose document.xml is not XML
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf, zipfile.ZipFile(io.BytesIO(data)) as good:
        for name in good.namelist():
            zf.writestr(name, b"<w:document>broken" if name == "word/document.xml" else good.read(name))
    assert failure(tmp_path, "x.docx", buf.getvalue()).startswith("not a valid DOCX (")


# --------------------------------------------------------------------------------------------
# HTML, Markdown
# --------------------------------------------------------------------------------------------


def test_html_skips_script_style_and_reads_metadata(tmp_path: Path) -> None:
    result, text, _ = extract(tmp_path, "web/press.html", (SAMPLES / "documents/web/press-release.html").read_bytes())
    lines = text.splitlines()
    assert "Farm shop café opens on 1 May" in lines
    assert "“We wanted a place where people can taste the orchard,” said manager Ana Lima." in lines
    assert "Open Tuesday to Sunday, 9:00–17:00" in lines
    assert "Apple cake | 3.50 €" in " ".join(lines)
    assert "fresh apple cake" in text
    for hidden in ("analytics", "not page text", "font-family", "enable JavaScript"):
        assert hidden not in text
    assert "opens a farm shop café" not in text  # the <title> is metadata, not body text
    assert result["title"] == "Northwind Orchards opens a farm shop café"
    assert result["author"] == "Northwind Orchards press office"
    assert result["description"] == "The farm shop at Orchard Lane now serves coffee and cake."
    assert result["language"] == "en"
    assert result["encoding"] == "utf-8"


def test_html_in_a_declared_legacy_charset(tmp_path: Path) -> None:
    page = ('<html><head><meta charset="windows-1252"><title>Prix</title></head>'
            "<body><p>Crème brûlée – 6 €</p></body></html>")
    result, text, _ = extract(tmp_path, "fr.htm", page.encode("cp1252"))
    assert text == "Crème brûlée – 6 €"
    assert result["encoding"] == "windows-1252"


def test_markdown_is_stripped_to_text(tmp_path: Path) -> None:
    result, text, _ = extract(tmp_path, "notes/meeting.md", (SAMPLES / "notes/meeting-notes.md").read_bytes())
    lines = text.splitlines()
    assert lines[0] == "Orchard team meeting"
    assert "Present: Ana, Ben, Chloé, Dev. Apologies: Emil." in lines
    assert "Start pruning the Bramley rows on Monday." in lines
    assert "Order 200 new crates from the usual supplier." in lines
    assert "Move the pressing-line-2 service to April." in lines
    assert "Frost risk stays high until mid-April: check the forecast every evening." in lines
    assert "Crate order | Ben | 22 March" in lines
    for markup in ("**", "](", "https://", "## ", "`", "> ", "---", "title:"):
        assert markup not in text
    assert result["title"] == "Orchard team meeting 2024-03-18"  # front matter wins
    assert result["author"] == "Ana Lima"
    assert result["format"] == "markdown"


GUIDE = """# Setup guide

Install it:

```python
def main(**kwargs):
    # a comment, not a heading
    if kwargs:
\treturn 1
```

    $ batchdesk run ./in
      --task   extract-text

- a list item

      continued list text

Result *with* `code`
======

Done *now*.
"""


def test_markdown_code_blocks_keep_their_indentation(tmp_path: Path) -> None:
    result, text, _ = extract(tmp_path, "guide.md", GUIDE.encode())
    assert text == (
        "Setup guide\n\nInstall it:\n\n"
        "def main(**kwargs):\n    # a comment, not a heading\n    if kwargs:\n\treturn 1\n\n"
        "$ batchdesk run ./in\n  --task   extract-text\n\n"
        "a list item\n\ncontinued list text\n\nResult with code\n\nDone now."
    )
    assert result["title"] == "Setup guide"
    _fmt, extracted = extract_document(tmp_path / "src" / "guide.md")
    assert extracted.text == text
    assert extracted.headings == [(0, "Setup guide"), (text.index("Result with"), "Result with code")]


def test_html_headings_and_spaces_for_line_ends_except_in_pre(tmp_path: Path) -> None:
    page = (b"<html><body><h1>Farm <em>shop</em>\n news</h1><p>Open\ndaily.</p><div><h3>Prices</h3>"
            b"<table><tr><td>Cake</td><td>3.50</td></tr></table></div><pre>ab\ncd</pre>"
            b"<script><h2>not one</h2></script></body></html>")
    (tmp_path / "p.html").write_bytes(page)
    _fmt, extracted = extract_document(tmp_path / "p.html")
    # a line end in the source is a space, except in <pre>
    assert extracted.text == "Farm shop news\n\nOpen daily.\n\nPrices\n\n| Cake | 3.50\n\nab\ncd"
    assert extracted.headings == [(0, "Farm shop news"), (extracted.text.index("Prices"), "Prices")]


def test_text_that_looks_like_garbage_is_warned(tmp_path: Path) -> None:
    french = ("Le café crème et la crème brûlée de l'été sont prêts ; les invités naïfs en redemandent. " * 3).encode()
    result, _, _ = extract(tmp_path, "menu.txt", french)
    assert result["encoding"] == "utf-8" and "warnings" not in result
    result, text, _ = extract(tmp_path, "menu.txt", french, encoding="cp1252")  # the wrong encoding, forced
    assert text.startswith("Le cafÃ© crÃ¨me")
    assert result["warnings"] == ["the text looks like garbage (mojibake (UTF-8 text decoded in a legacy encoding))"]


# --------------------------------------------------------------------------------------------
# Plain text and encodings
# --------------------------------------------------------------------------------------------

TEXT = "Grüße aus Köln – café, naïve, 5 €\nZweite Zeile"


@pytest.mark.parametrize(
    "data, encoding",
    [
        (TEXT.encode("utf-8"), "utf-8"),
        (b"\xef\xbb\xbf" + TEXT.encode("utf-8"), "utf-8-sig"),
        (TEXT.encode("utf-16"), "utf-16"),
        (TEXT.encode("utf-16-le"), "utf-16-le"),  # no BOM: recognised by its zero bytes
        (TEXT.encode("cp1252"), "cp1252"),
    ],
)
def test_text_in_each_encoding_is_decoded_and_counted(tmp_path: Path, data: bytes, encoding: str) -> None:
    result, text, _ = extract(tmp_path, "t.txt", data)
    assert text == TEXT
    assert result["encoding"] == encoding
    assert result["words"] == 10
    assert result["chars"] == len(TEXT)


def test_latin1_fallback_and_forced_encoding(tmp_path: Path) -> None:
    # 0x81 is undefined in cp1252 and invalid utf-8: only latin-1 decodes it
    data = "Prénom: Zoë\n".encode("latin-1") + b"code \x81\n"
    result, text, _ = extract(tmp_path, "a.txt", data)
    assert result["encoding"] == "latin-1"
    assert text.startswith("Prénom: Zoë")
    # the wrong encoding forced by the user: mojibake, but no crash and the name is recorded
    result, text, _ = extract(tmp_path, "b.txt", "Zoë".encode(), encoding="cp1252")
    assert text == "ZoÃ«" and result["encoding"] == "cp1252"
    with pytest.raises(TaskError, match="option 'encoding': 'no-such-codec' is not allowed: unknown encoding"):
        extract(tmp_path, "c.txt", b"x", encoding="no-such-codec")  # refused when the job is submitted


def test_the_cp1252_sample_note_is_decoded_as_cp1252(tmp_path: Path) -> None:
    result, text, _ = extract(tmp_path, "n.txt", (SAMPLES / "notes/lagerbestand-cp1252.txt").read_bytes())
    assert result["encoding"] == "cp1252"
    assert "Saft „naturtrüb“: 480 Flaschen" in text


def test_binary_empty_and_unsupported_inputs(tmp_path: Path) -> None:
    blob = bytes((i * 31 + 7) % 256 for i in range(3000))
    assert failure(tmp_path, "bin.txt", blob) == "not a text file (binary content)"
    assert failure(tmp_path, "empty.txt", b"") == "empty file (0 bytes)"
    assert failure(tmp_path, "blob.bin", blob) == "unsupported file type (binary)"
    assert failure(tmp_path, "pic.png", b"\x89PNG\r\n\x1a\n" + bytes(100)) == "unsupported file type (png)"
    assert failure(tmp_path, "old.doc", b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + bytes(100)) == (
        "legacy Word .doc files are not supported by extract-text"
    )


def test_unknown_extension_is_sniffed(tmp_path: Path) -> None:
    page = b"<!doctype html><html><body><h1>Sniffed</h1><script>x()</script></body></html>"
    result, text, _ = extract(tmp_path, "page.dat", page)
    assert result["format"] == "html" and text == "Sniffed"
    result, text, _ = extract(tmp_path, "README", b"Just some words in a file without extension.\n")
    assert result["format"] == "text" and text == "Just some words in a file without extension."


# --------------------------------------------------------------------------------------------
# JSON and CSV
# --------------------------------------------------------------------------------------------


def test_json_and_jsonl_become_path_value_lines_and_bad_json_fails(tmp_path: Path) -> None:
    result, text, _ = extract(tmp_path, "inv.json", (SAMPLES / "data/inventory.json").read_bytes())
    lines = text.splitlines()
    assert "title: Northwind Orchards inventory" in lines
    assert "warehouse.name: Appleton cold store" in lines
    assert "items[0].name: Elstar apples" in lines
    assert "items[2].organic: true" in lines
    assert result["title"] == "Northwind Orchards inventory" and result["top_level"] == "object"
    reason = failure(tmp_path, "bad.json", b'{"a": 1,\n "b": }')
    assert reason == "not valid JSON: Expecting value at line 2 column 7"
    result, text, _ = extract(tmp_path, "log.jsonl", b'{"event": "start"}\n\n{"event": "stop", "code": 0}\n')
    assert text.splitlines() == ["[0].event: start", "[1].event: stop", "[1].code: 0"]
    assert result["records"] == 2
    assert failure(tmp_path, "bad.jsonl", b'{"ok": 1}\n{nope}\n').startswith("not valid JSON Lines: line 2:")


def test_csv_in_two_dialects(tmp_path: Path) -> None:
    result, text, _ = extract(tmp_path, "c.csv", (SAMPLES / "data/contacts.csv").read_bytes())
    assert text.splitlines()[0] == "name | role | email | phone"
    assert "Chloé Martin | Food safety | chloe.martin@example.com | +44 20 7946 0013" in text
    assert (result["rows"], result["columns"], result["delimiter"]) == (5, 4, ",")
    result, text, _ = extract(tmp_path, "de.csv", (SAMPLES / "statements/de-girokonto-2024-03.csv").read_bytes())
    assert result["delimiter"] == ";" and result["encoding"] == "cp1252"
    assert "28.03.2024 | 28.03.2024 | Lastschrift | Einkauf 27.03. | REWE Markt GmbH | -62,47 | EUR" in text


# --------------------------------------------------------------------------------------------
# Outputs, options, chunking
# --------------------------------------------------------------------------------------------


def test_the_whole_samples_folder_is_extracted_with_two_outputs_per_file(tmp_path: Path) -> None:
    out = tmp_path / "out"
    rows = run_job("extract-text", SAMPLES, out)
    assert {status for _r, status, _res, _e in rows} == {"done"}
    written = sorted(p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file())
    assert "notes/Café notes – été 2024.txt.txt" in written
    assert "documents/web/archive/2023/product-faq.html.chunks.jsonl" in written
    assert len(written) == 2 * len(rows)
    assert not any(p.name.endswith(".part") for p in out.rglob("*"))


def test_outputs_never_overwrite_the_input(tmp_path: Path) -> None:
    src = tmp_path / "src"
    src.mkdir()
    original = b"keep me\n"
    (src / "a.txt").write_bytes(original)
    # output folder == source folder: outputs are <name>.txt beside it, the input stays untouched
    result = run_task("extract-text", src / "a.txt", src, src)
    assert (src / "a.txt").read_bytes() == original
    assert (src / "a.txt.txt").read_text(encoding="utf-8") == "keep me\n"
    assert result["text_path"] == "a.txt.txt"
    ctx = TaskContext(options={}, output_dir=src, rel_path="a.txt", source_root=src)
    with pytest.raises(ItemError, match="would overwrite the input"):
        output_file(ctx, src / "a.txt", "")
    ctx = TaskContext(options={}, output_dir=tmp_path / "o", rel_path="../escape.txt", source_root=src)
    with pytest.raises(ItemError, match="would leave the output folder"):
        output_file(ctx, src / "a.txt", ".txt")


def test_options_schema_and_validation(tmp_path: Path) -> None:
    spec = registry.get("extract-text")
    assert spec.parse_options({}) == {"chunk_size": 1000, "chunk_overlap": 200, "encoding": "auto", "max_mb": 256}
    with pytest.raises(TaskError, match="not a valid int"):
        spec.parse_options({"chunk_size": "big"})
    with pytest.raises(TaskError, match=r"option 'chunk_overlap': '80' is not allowed: at most chunk_size/2 \(50\)"):
        spec.parse_options({"chunk_size": "100", "chunk_overlap": "80"})
    with pytest.raises(TaskError, match="option 'chunk_size': '10' is too small; allowed: integer >= 50"):
        spec.parse_options({"chunk_size": "10"})
    # a runner given unchecked options still fails the item cleanly
    ctx = TaskContext(options={"chunk_size": 10}, output_dir=tmp_path / "o", rel_path="a.txt", source_root=tmp_path)
    (tmp_path / "a.txt").write_text("hello")
    with pytest.raises(ItemError, match="option chunk_size must be at least 50"):
        spec.func(tmp_path / "a.txt", ctx)
    assert failure(tmp_path, "big.txt", b"x" * (1 << 20) + b"y", max_mb="1").startswith("file is larger than the 1 MiB")


def test_chunk_spans_cover_the_text_at_word_boundaries() -> None:
    words = [f"word{i}" for i in range(400)]
    text = " ".join(words)
    spans = list(chunk_spans(text, 100, 20))
    assert spans[0][0] == 0 and spans[-1][1] == len(text)
    for (s1, e1), (s2, _e2) in pairwise(spans):
        assert e1 - s1 <= 100
        assert s1 < s2 < e1  # progress, with overlap
        assert text[s2 - 1] == " "  # chunks start at a word
        assert text[e1] == " "  # and end at one
    joined = set()
    for s, e in spans:
        joined.update(text[s:e].split())
    assert joined == set(words)
    # a single unbroken run is cut hard but still progresses and covers everything
    blob = "x" * 1050
    spans = list(chunk_spans(blob, 100, 10))
    assert spans[0] == (0, 100) and spans[-1][1] == 1050 and all(e - s <= 100 for s, e in spans)
    assert list(chunk_spans("   ", 100, 10)) == []
    assert list(chunk_spans("short text", 100, 10)) == [(0, 10)]


def test_unwritable_output_fails_the_item_cleanly(tmp_path: Path) -> None:
    src = tmp_path / "src"
    src.mkdir()
    name = "n" * 250 + ".md"  # fine as an input, but "<name>.chunks.jsonl" is too long for most file systems
    try:
        (src / name).write_text("# hi\n", encoding="utf-8")
    except OSError:
        pytest.skip("this file system refuses the input name already")
    with pytest.raises(ItemError, match=r"^cannot write "):
        run_task("extract-text", src / name, src, tmp_path / "out")


def test_headings_are_placed_in_order_also_wrapped_or_in_another_case() -> None:
    from workers.tasks.extract_text.extracted import place_headings

    text = "Intro\nSome text.\nIntro\nResults in\ndetail here\nRESULTS SUMMARY\n  Code line"
    assert place_headings(text, ["Intro", "Intro", "Results in detail", "Results summary", "Missing", "Code line"]) == [
        (0, "Intro"),
        (17, "Intro"),  # the next one after the previous heading
        (23, "Results in detail"),  # wrapped over two lines
        (46, "Results summary"),  # another case
        (64, "Code line"),  # indented: the offset of its first letter
    ]


def test_headings_not_in_the_text_cost_little() -> None:
    """A hostile document: 20,000 headings, none of them at a line start of 2 MB of text."""
    import time

    from workers.tasks.extract_text.extracted import place_headings

    text = "| cell text in a table row\n" * 80_000
    started = time.perf_counter()
    assert place_headings(text, [f"heading {n}" for n in range(20_000)]) == []
    assert time.perf_counter() - started < 10  # about 1 s; a scan to the end per heading takes minutes
