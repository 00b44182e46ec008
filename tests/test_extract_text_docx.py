"""extract-text on DOCX: every part of the text in document order (headers, footers, footnotes,
endnotes, comments, text boxes, content controls, nested tables), headings, properties. The
documents are written by python-docx, with raw WordprocessingML for what it cannot write."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path
from typing import Any

from workers.tasks.extract_text import extract_document

try:
    from conftest_tasks import run_task
except ImportError:  # tests/ became a package
    from tests.conftest_tasks import run_task

W_NS = "http://schemas.openxmlformats.org/wordprocessingml/2006/main"
NS = (f'xmlns:w="{W_NS}" xmlns:mc="http://schemas.openxmlformats.org/markup-compatibility/2006" '
      'xmlns:wp="http://schemas.openxmlformats.org/drawingml/2006/wordprocessingDrawing" '
      'xmlns:a="http://schemas.openxmlformats.org/drawingml/2006/main" '
      'xmlns:wps="http://schemas.microsoft.com/office/word/2010/wordprocessingShape" '
      'xmlns:v="urn:schemas-microsoft-com:vml"')
TEXT_BOX = """<w:r {ns}><mc:AlternateContent><mc:Choice Requires="wps"><w:drawing><wp:anchor><a:graphic><a:graphicData>
<wps:wsp><wps:txbx><w:txbxContent><w:p><w:r><w:t>Box: delivery dates moved</w:t></w:r></w:p></w:txbxContent></wps:txbx>
</wps:wsp></a:graphicData></a:graphic></wp:anchor></w:drawing></mc:Choice><mc:Fallback><w:pict><v:shape><v:textbox>
<w:txbxContent><w:p><w:r><w:t>Box: delivery dates moved</w:t></w:r></w:p></w:txbxContent></v:textbox></v:shape></w:pict>
</mc:Fallback></mc:AlternateContent></w:r>"""
INLINE_CONTROL = ('<w:sdt {ns}><w:sdtPr><w:alias w:val="Customer"/><w:showingPlcHdr/></w:sdtPr>'
                  "<w:sdtContent><w:r><w:t>Northwind Orchards</w:t></w:r></w:sdtContent></w:sdt>")
BLOCK_CONTROL = ('<w:sdt {ns}><w:sdtPr><w:alias w:val="Status"/></w:sdtPr><w:sdtContent>'
                 "<w:p><w:r><w:t>Approved</w:t></w:r></w:p></w:sdtContent></w:sdt>")
DELETED_AND_FIELD = ('<w:p {ns}><w:r><w:t xml:space="preserve">Prices may rise </w:t></w:r>'
                     '<w:del w:id="90" w:author="Ben"><w:r><w:delText>sharply </w:delText></w:r></w:del>'
                     '<w:r><w:t xml:space="preserve">in </w:t></w:r><w:r><w:fldChar w:fldCharType="begin"/></w:r>'
                     '<w:r><w:instrText xml:space="preserve"> DATE \\@ "yyyy" </w:instrText></w:r>'
                     '<w:r><w:fldChar w:fldCharType="separate"/></w:r><w:r><w:t>2024</w:t></w:r>'
                     '<w:r><w:fldChar w:fldCharType="end"/></w:r><w:r><w:t>.</w:t></w:r></w:p>')
OUTLINE_LEVEL = '<w:p {ns}><w:pPr><w:outlineLvl w:val="0"/></w:pPr><w:r><w:t>Appendix</w:t></w:r></w:p>'
NOTES = """<w:{kind}s {ns}><w:{kind} w:type="separator" w:id="-1"><w:p><w:r><w:separator/></w:r></w:p></w:{kind}>
<w:{kind} w:type="continuationSeparator" w:id="0"><w:p><w:r><w:continuationSeparator/></w:r></w:p></w:{kind}>
<w:{kind} w:id="1"><w:p><w:r><w:t xml:space="preserve"> {text}</w:t></w:r></w:p></w:{kind}></w:{kind}s>"""


def _xml(template: str) -> Any:
    from docx.oxml import parse_xml

    return parse_xml(template.replace("{ns}", NS))


def _add_block(document: Any, template: str) -> None:
    """A block at the end of the body (before the last section's properties, which end it)."""
    document.element.body.sectPr.addprevious(_xml(template))


def _with_notes(data: bytes) -> bytes:
    """The package plus a footnotes and an endnotes part (python-docx writes neither)."""
    out = io.BytesIO()
    rels = {"footnotes": "rIdFoot", "endnotes": "rIdEnd"}
    texts = {"footnote": "Audited figures, see annex.", "endnote": "Final endnote."}
    with zipfile.ZipFile(io.BytesIO(data)) as src, zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as dst:
        for item in src.infolist():
            body = src.read(item.filename)
            if item.filename == "word/_rels/document.xml.rels":
                extra = "".join(f'<Relationship Id="{rid}" Target="{kind}.xml" Type="http://schemas.openxmlformats.org'
                                f'/officeDocument/2006/relationships/{kind}"/>' for kind, rid in rels.items())
                body = body.replace(b"</Relationships>", extra.encode() + b"</Relationships>")
            elif item.filename == "[Content_Types].xml":
                extra = "".join(f'<Override PartName="/word/{kind}.xml" ContentType="application/vnd.openxmlformats-'
                                f'officedocument.wordprocessingml.{kind}+xml"/>' for kind in rels)
                body = body.replace(b"</Types>", extra.encode() + b"</Types>")
            dst.writestr(item, body)
        for kind, text in texts.items():
            dst.writestr(f"word/{kind}s.xml", NOTES.format(kind=kind, ns=f'xmlns:w="{W_NS}"', text=text))
    return out.getvalue()


def _review() -> bytes:
    """Two sections, each with its own header; notes, a comment, a text box, content controls, a
    nested table, a deletion, a field and headings (styles and an outline level)."""
    import docx

    document = docx.Document()
    document.sections[0].header.paragraphs[0].text = "ACME Confidential"
    document.sections[0].footer.paragraphs[0].text = "Page footer text"
    document.add_heading("Quarterly review", 0)
    document.add_heading("Sales", 1)
    sales = document.add_paragraph("Sales rose by 9 percent.")
    sales._p.append(_xml('<w:r {ns}><w:footnoteReference w:id="1"/></w:r>'))
    document.add_comment(sales.runs, text="Check the number", author="Dana")
    shipping = document.add_paragraph("Shipping was late in March.")
    shipping._p.append(_xml(TEXT_BOX))
    customer = document.add_paragraph("Customer: ")
    customer._p.append(_xml(INLINE_CONTROL))
    _add_block(document, BLOCK_CONTROL)
    table = document.add_table(rows=1, cols=2)
    table.cell(0, 0).text, table.cell(0, 1).text = "Region", "Figures"
    nested = table.cell(0, 1).add_table(rows=2, cols=2)
    for row, (region, figure) in enumerate((("North", "10"), ("South", "12"))):
        nested.cell(row, 0).text, nested.cell(row, 1).text = region, figure
    section = document.add_section()
    section.header.is_linked_to_previous = False
    section.header.paragraphs[0].text = "Second section header"
    document.add_heading("Risks", 2)
    _add_block(document, DELETED_AND_FIELD)
    _add_block(document, OUTLINE_LEVEL)
    document.core_properties.title = "Review Q1"
    buf = io.BytesIO()
    document.save(buf)
    return _with_notes(buf.getvalue())


EXPECTED = [
    "ACME Confidential",
    "Quarterly review",
    "Sales",
    "Sales rose by 9 percent.",
    "[1] Audited figures, see annex.",  # the note referenced first comes first
    "Comment (Dana): Check the number",
    "Shipping was late in March.",
    "Box: delivery dates moved",
    "Customer: Northwind Orchards",
    "Approved",
    "Region | Figures",
    "North | 10",
    "South | 12",
    "Page footer text",
    "Second section header",
    "Risks",
    "Prices may rise in 2024.",
    "Appendix",
    "[1] Final endnote.",
]


def test_docx_text_in_document_order(tmp_path: Path) -> None:
    (tmp_path / "review.docx").write_bytes(_review())
    fmt, extracted = extract_document(tmp_path / "review.docx")
    assert fmt == "docx"
    assert [line for line in extracted.text.splitlines() if line] == EXPECTED
    headings = ("Quarterly review", "Sales", "Risks", "Appendix")
    assert extracted.headings == [(extracted.text.index(h), h) for h in headings]
    assert extracted.meta["title"] == "Review Q1"
    assert extracted.meta["modified"] and extracted.meta["created"]
    assert extracted.warnings == []


def test_docx_task_writes_every_part_in_order_with_its_title_and_no_warning(tmp_path: Path) -> None:
    (tmp_path / "review.docx").write_bytes(_review())
    result = run_task("extract-text", tmp_path / "review.docx", tmp_path, tmp_path / "out")
    text = (tmp_path / "out" / result["text_path"]).read_text(encoding="utf-8")
    assert [line for line in text.splitlines() if line] == EXPECTED
    assert result["format"] == "docx" and result["title"] == "Review Q1" and "warnings" not in result


def test_docx_tables_merged_cells_and_empty_rows(tmp_path: Path) -> None:
    import docx

    document = docx.Document()
    table = document.add_table(rows=3, cols=3)
    table.cell(0, 0).merge(table.cell(0, 1)).text = "Wide"
    table.cell(0, 2).text = "Right"
    table.cell(2, 0).text, table.cell(2, 2).text = "a", "c"
    buf = io.BytesIO()
    document.save(buf)
    (tmp_path / "t.docx").write_bytes(buf.getvalue())
    _fmt, extracted = extract_document(tmp_path / "t.docx")
    assert extracted.text.splitlines() == ["Wide | Right", "a | | c"]  # a merged cell once, an empty row left out
