#!/usr/bin/env python3
"""Generate batchdesk's bundled sample inputs (``data/samples/``), byte for byte the same every run.

    python scripts/make_samples.py            # (re)write data/samples/
    python scripts/make_samples.py --out DIR  # write them somewhere else
    python scripts/make_samples.py --check    # exit 1 if data/samples/ differs from what this makes

Stdlib only: the PDFs are assembled by hand (a catalog, a page tree, Helvetica with WinAnsiEncoding,
one text content stream per page, an info dictionary, an exact xref table) and the DOCX is zipped
from hand-written WordprocessingML with fixed timestamps. All text is written for batchdesk;
the companies, people and accounts in it are made up.
"""

from __future__ import annotations

import argparse
import json
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_OUT = ROOT / "data" / "samples"
ZIP_TIME = (2024, 3, 15, 12, 0, 0)

# --------------------------------------------------------------------------------------------
# PDF
# --------------------------------------------------------------------------------------------


def _pdf_string(text: str) -> bytes:
    raw = text.encode("cp1252")
    return b"(" + raw.replace(b"\\", b"\\\\").replace(b"(", b"\\(").replace(b")", b"\\)") + b")"


def make_pdf(pages: list[list[tuple[str, str]]], title: str, author: str, created: str) -> bytes:
    """pages: per page a list of (style, text) lines; style is "h1", "h2" or "p"."""
    fonts = {"h1": (b"/F2", 18, 26), "h2": (b"/F2", 13, 20), "p": (b"/F1", 11, 15)}
    objects: dict[int, bytes] = {}
    n_pages = len(pages)
    page_ids = [5 + 2 * i for i in range(n_pages)]
    objects[1] = b"<< /Type /Catalog /Pages 2 0 R >>"
    objects[2] = b"<< /Type /Pages /Kids [" + b" ".join(b"%d 0 R" % p for p in page_ids) + b"] /Count %d >>" % n_pages
    objects[3] = b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica /Encoding /WinAnsiEncoding >>"
    objects[4] = b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica-Bold /Encoding /WinAnsiEncoding >>"
    for page_id, lines in zip(page_ids, pages, strict=True):
        ops = [b"BT", b"72 770 Td"]
        for style, text in lines:
            font, size, leading = fonts[style]
            ops.append(b"%s %d Tf" % (font, size))
            ops.append(b"0 -%d Td" % leading)
            ops.append(_pdf_string(text) + b" Tj")
        ops.append(b"ET")
        stream = b"\n".join(ops) + b"\n"
        objects[page_id] = (
            b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] "
            b"/Resources << /Font << /F1 3 0 R /F2 4 0 R >> >> /Contents %d 0 R >>" % (page_id + 1)
        )
        objects[page_id + 1] = b"<< /Length %d >>\nstream\n" % len(stream) + stream + b"endstream"
    info_id = page_ids[-1] + 2
    objects[info_id] = (
        b"<< /Title " + _pdf_string(title) + b" /Author " + _pdf_string(author)
        + b" /Producer (batchdesk make_samples.py) /CreationDate (D:" + created.encode() + b"Z) >>"
    )
    out = bytearray(b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n")
    offsets = {}
    for oid in sorted(objects):
        offsets[oid] = len(out)
        out += b"%d 0 obj\n" % oid + objects[oid] + b"\nendobj\n"
    xref = len(out)
    size = max(objects) + 1
    out += b"xref\n0 %d\n0000000000 65535 f \n" % size
    for oid in range(1, size):
        out += b"%010d 00000 n \n" % offsets[oid]
    out += b"trailer\n<< /Size %d /Root 1 0 R /Info %d 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (size, info_id, xref)
    return bytes(out)


# --------------------------------------------------------------------------------------------
# DOCX
# --------------------------------------------------------------------------------------------

_W = "http://schemas.openxmlformats.org/wordprocessingml/2006/main"


def _xml_escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace('"', "&quot;")


def _para(text: str, style: str | None = None, page_break: bool = False) -> str:
    ppr = f'<w:pPr><w:pStyle w:val="{style}"/></w:pPr>' if style else ""
    brk = '<w:r><w:br w:type="page"/></w:r>' if page_break else ""
    return f'<w:p>{ppr}<w:r><w:t xml:space="preserve">{_xml_escape(text)}</w:t></w:r>{brk}</w:p>'


def _table(rows: list[list[str]]) -> str:
    out = ['<w:tbl><w:tblPr><w:tblStyle w:val="TableGrid"/><w:tblW w:w="0" w:type="auto"/></w:tblPr><w:tblGrid>']
    out += ['<w:gridCol w:w="3000"/>' for _ in rows[0]]
    out.append("</w:tblGrid>")
    for row in rows:
        cells = "".join(f'<w:tc><w:tcPr><w:tcW w:w="3000" w:type="dxa"/></w:tcPr>{_para(c)}</w:tc>' for c in row)
        out.append(f"<w:tr>{cells}</w:tr>")
    out.append("</w:tbl>")
    return "".join(out)


def make_docx(blocks: list[str], title: str, author: str, created: str, pages: int) -> bytes:
    document = (
        '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
        f'<w:document xmlns:w="{_W}"><w:body>' + "".join(blocks)
        + '<w:sectPr><w:pgSz w:w="11906" w:h="16838"/><w:pgMar w:top="1440" w:right="1440" '
        'w:bottom="1440" w:left="1440" w:header="708" w:footer="708" w:gutter="0"/></w:sectPr>'
        "</w:body></w:document>"
    )
    styles = (
        '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
        f'<w:styles xmlns:w="{_W}">'
        '<w:style w:type="paragraph" w:default="1" w:styleId="Normal"><w:name w:val="Normal"/></w:style>'
        '<w:style w:type="paragraph" w:styleId="Title"><w:name w:val="Title"/><w:basedOn w:val="Normal"/>'
        '<w:rPr><w:b/><w:sz w:val="48"/></w:rPr></w:style>'
        '<w:style w:type="paragraph" w:styleId="Heading1"><w:name w:val="heading 1"/><w:basedOn w:val="Normal"/>'
        '<w:rPr><w:b/><w:sz w:val="32"/></w:rPr></w:style>'
        '<w:style w:type="table" w:styleId="TableGrid"><w:name w:val="Table Grid"/></w:style>'
        "</w:styles>"
    )
    content_types = (
        '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
        '<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
        '<Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/>'
        '<Default Extension="xml" ContentType="application/xml"/>'
        '<Override PartName="/word/document.xml" ContentType="application/vnd.openxmlformats-officedocument.wordprocessingml.document.main+xml"/>'
        '<Override PartName="/word/styles.xml" ContentType="application/vnd.openxmlformats-officedocument.wordprocessingml.styles+xml"/>'
        '<Override PartName="/docProps/core.xml" ContentType="application/vnd.openxmlformats-package.core-properties+xml"/>'
        '<Override PartName="/docProps/app.xml" ContentType="application/vnd.openxmlformats-officedocument.extended-properties+xml"/>'
        "</Types>"
    )
    rels = (
        '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
        '<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
        '<Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/officeDocument" Target="word/document.xml"/>'
        '<Relationship Id="rId2" Type="http://schemas.openxmlformats.org/package/2006/relationships/metadata/core-properties" Target="docProps/core.xml"/>'
        '<Relationship Id="rId3" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/extended-properties" Target="docProps/app.xml"/>'
        "</Relationships>"
    )
    doc_rels = (
        '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
        '<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
        '<Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/styles" Target="styles.xml"/>'
        "</Relationships>"
    )
    core = (
        '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
        '<cp:coreProperties xmlns:cp="http://schemas.openxmlformats.org/package/2006/metadata/core-properties" '
        'xmlns:dc="http://purl.org/dc/elements/1.1/" xmlns:dcterms="http://purl.org/dc/terms/" '
        'xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">'
        f"<dc:title>{_xml_escape(title)}</dc:title><dc:creator>{_xml_escape(author)}</dc:creator>"
        f'<dcterms:created xsi:type="dcterms:W3CDTF">{created}</dcterms:created>'
        f'<dcterms:modified xsi:type="dcterms:W3CDTF">{created}</dcterms:modified>'
        "</cp:coreProperties>"
    )
    app = (
        '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
        '<Properties xmlns="http://schemas.openxmlformats.org/officeDocument/2006/extended-properties">'
        f"<Application>batchdesk make_samples.py</Application><Pages>{pages}</Pages></Properties>"
    )
    return make_zip(
        [
            ("[Content_Types].xml", content_types),
            ("_rels/.rels", rels),
            ("word/document.xml", document),
            ("word/_rels/document.xml.rels", doc_rels),
            ("word/styles.xml", styles),
            ("docProps/core.xml", core),
            ("docProps/app.xml", app),
        ]
    )


def make_zip(members: list[tuple[str, str]]) -> bytes:
    import io

    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for name, text in members:
            info = zipfile.ZipInfo(name, date_time=ZIP_TIME)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o644 << 16
            info.create_system = 3  # the same bytes on every platform
            zf.writestr(info, text.encode("utf-8"), compresslevel=9)
    return buf.getvalue()


# --------------------------------------------------------------------------------------------
# Content
# --------------------------------------------------------------------------------------------

QUARTERLY = [
    [
        ("h1", "Northwind Orchards - Quarterly Report Q1 2024"),
        ("p", "Prepared by the finance team for the board meeting of 15 April 2024."),
        ("h2", "Summary"),
        ("p", "Revenue for the first quarter reached 412,800 EUR, up 9 percent on the same"),
        ("p", "quarter last year. Cider sales grew fastest, while fresh fruit sales were flat"),
        ("p", "because the late frost in March delayed the early apple varieties."),
        ("h2", "Operations"),
        ("p", "The new cold store in Appleton opened on 4 February and cut spoilage from"),
        ("p", "6.1 percent to 3.4 percent. Two pressing lines were serviced in January."),
        ("p", "Staff numbers rose from 38 to 41 with the hiring of two orchard technicians"),
        ("p", "and one food safety coordinator."),
    ],
    [
        ("h2", "Outlook for Q2"),
        ("p", "We expect revenue between 430,000 and 455,000 EUR. The main risks are the"),
        ("p", "weather during blossom and the price of glass bottles, which rose 12 percent."),
        ("h2", "Actions"),
        ("p", "1. Sign the two-year bottle supply contract before 30 April."),
        ("p", "2. Start the pilot of reusable crates with three partner shops."),
        ("p", "3. Review the café opening hours at the farm shop before the summer season."),
    ],
]

INVOICE = [
    [
        ("h1", "INVOICE 2024-0042"),
        ("p", "Lumen Print & Design Ltd, 14 Harbour Row, Portsmouth PO1 3AB"),
        ("p", "Bill to: Northwind Orchards, Orchard Lane 7, 3811 Appleton"),
        ("p", "Invoice date: 2024-03-12    Due date: 2024-04-11"),
        ("h2", "Items"),
        ("p", "Label design, 3 cider varieties ........................ 1,200.00 GBP"),
        ("p", "Printed labels, 15,000 units ........................... 840.00 GBP"),
        ("p", "Delivery ................................................ 35.00 GBP"),
        ("p", "Subtotal 2,075.00 GBP    VAT 20% 415.00 GBP    Total 2,490.00 GBP"),
        ("p", "Please pay by bank transfer quoting the invoice number. Thank you!"),
    ]
]

HANDBOOK_BLOCKS = [
    _para("Northwind Orchards Employee Handbook", "Title"),
    _para("Welcome", "Heading1"),
    _para(
        "This handbook explains how we work together at Northwind Orchards: working hours, "
        "holidays, safety in the orchard and the cider house, and whom to ask when something is unclear."
    ),
    _para("Working hours", "Heading1"),
    _para(
        "The standard week is 38 hours. During harvest (September and October) teams agree rotas "
        "two weeks ahead, and overtime is paid or taken as time off within three months."
    ),
    _para("Holidays", "Heading1", page_break=True),
    _para("Everyone starts with 28 days of paid holiday a year, plus public holidays."),
    _table(
        [
            ["Years of service", "Holiday days", "Notice needed"],
            ["0-2", "28", "2 weeks"],
            ["3-5", "30", "2 weeks"],
            ["6 or more", "32", "3 weeks"],
        ]
    ),
    _para("Safety", "Heading1"),
    _para(
        "Wear safety boots in the pressing hall, never climb a ladder alone, and report every "
        "near miss to the food safety coordinator on the same day."
    ),
]

PRESS_HTML = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>Northwind Orchards opens a farm shop caf&eacute;</title>
<meta name="author" content="Northwind Orchards press office">
<meta name="description" content="The farm shop at Orchard Lane now serves coffee and cake.">
<style>body { font-family: sans-serif; } .hidden { display: none; }</style>
<script>window.analytics = {track: function () { return "this is not page text"; }};</script>
</head>
<body>
<nav><a href="/">Home</a> | <a href="/press">Press</a></nav>
<main>
<h1>Farm shop caf&eacute; opens on 1 May</h1>
<p>Visitors to Northwind Orchards can now enjoy <strong>fresh apple cake</strong>, coffee and
our own sparkling cider in the new caf&eacute; next to the farm shop.</p>
<p>&ldquo;We wanted a place where people can taste the orchard,&rdquo; said manager Ana Lima.</p>
<ul><li>Open Tuesday to Sunday, 9:00&ndash;17:00</li><li>Dogs welcome on the terrace</li></ul>
<table><tr><th>Item</th><th>Price</th></tr><tr><td>Apple cake</td><td>3.50 &euro;</td></tr></table>
</main>
<noscript>Please enable JavaScript for the map.</noscript>
</body>
</html>
"""

FAQ_HTML = """<html><head><title>Product FAQ (2023 archive)</title></head>
<body><h2>Is your cider gluten free?</h2><p>Yes. Our cider is made from apples only and contains
no barley or wheat.</p><h2>How long does unopened cider keep?</h2><p>Two years in a cool, dark place.
Once opened, keep it in the fridge and drink it within three days.</p>
<script type="text/javascript">document.write("not text");</script></body></html>
"""

README_MD = """# batchdesk sample inputs

These files are made by `scripts/make_samples.py` for the quickstart and the demos. Try:

```
batchdesk run data/samples --task checksum
batchdesk run data/samples --task extract-text --opt chunk_size=500
batchdesk run data/samples/statements --task statements
```

| folder | what |
| --- | --- |
| `documents/` | PDFs, a DOCX, HTML pages (one in a nested folder) |
| `notes/` | Markdown and text, one in cp1252, one with spaces and accents in its name |
| `data/` | JSON and CSV |
| `statements/` | bank statement CSV exports in three dialects, and PDF statements of three banks |

The PDF statements in `statements/` are made by `scripts/make_statement_pdfs.py` (with ReportLab,
from the `test` extra). All names, companies and numbers are made up.
"""

MEETING_MD = """---
title: Orchard team meeting 2024-03-18
author: Ana Lima
---

# Orchard team meeting

**Present:** Ana, Ben, Chloé, Dev. *Apologies:* Emil.

## Decisions

1. Start pruning the **Bramley** rows on Monday.
2. Order 200 new crates from [the usual supplier](https://example.com/crates).
3. Move the `pressing-line-2` service to April.

> Frost risk stays high until mid-April: check the forecast every evening.

| Task | Owner | Due |
| --- | --- | --- |
| Crate order | Ben | 22 March |
| Frost alarms | Dev | 20 March |
"""

CAFE_TXT = """Café notes – été 2024

Ideas for the summer menu at the farm shop café:
- apple and cinnamon crêpes
- iced cider tea (non-alcoholic)
- a "tasting flight" of three ciders, 4 × 100 ml

Price check: crêpes 4,50 €, flight 7,00 €.
"""

LEGACY_TXT = """Lagerbestand Übersicht – März 2024

Äpfel (Elstar): 1.250 kg
Birnen: 310 kg
Saft „naturtrüb“: 480 Flaschen

Notiz: bitte die Kühlzelle 2 bis Freitag prüfen.
"""

INVENTORY = {
    "title": "Northwind Orchards inventory",
    "updated": "2024-03-15",
    "warehouse": {"name": "Appleton cold store", "capacity_kg": 40000},
    "items": [
        {"sku": "APL-ELS", "name": "Elstar apples", "kg": 1250, "organic": True},
        {"sku": "PER-CON", "name": "Conference pears", "kg": 310, "organic": False},
        {"sku": "CID-DRY", "name": "Dry cider 75cl", "bottles": 2400, "organic": True},
    ],
}

CONTACTS_CSV = """name,role,email,phone
Ana Lima,Shop manager,ana.lima@example.com,+44 20 7946 0011
Ben Okafor,Orchard lead,ben.okafor@example.com,+44 20 7946 0012
"Chloé Martin",Food safety,chloe.martin@example.com,+44 20 7946 0013
Dev Patel,Technician,dev.patel@example.com,+44 20 7946 0014
"""

# A UK current account: d/m/Y, comma delimited, separate Paid out / Paid in columns, a preamble.
UK_CSV = """Account name:,Northwind Orchards Ltd
Account number:,****4821
Statement period:,01/03/2024 - 31/03/2024

Date,Type,Description,Paid out (GBP),Paid in (GBP),Balance (GBP)
01/03/2024,BGC,SALARY NORTHWIND ORCHARDS,,"2,650.00","3,912.40"
02/03/2024,DEB,TESCO STORES 3021,54.30,,"3,858.10"
04/03/2024,DD,OCTOPUS ENERGY,96.00,,"3,762.10"
05/03/2024,DEB,COSTA COFFEE PORTSMOUTH,4.20,,"3,757.90"
08/03/2024,SO,RENT 14 HARBOUR ROW,"1,150.00",,"2,607.90"
11/03/2024,DEB,TFL TRAVEL CH,12.80,,"2,595.10"
13/03/2024,DEB,NETFLIX.COM,10.99,,"2,584.11"
15/03/2024,DEB,SAINSBURYS S/MKTS,38.75,,"2,545.36"
19/03/2024,CPT,CASH ATM HIGH ST,40.00,,"2,505.36"
22/03/2024,FPI,REFUND LUMEN PRINT,,35.00,"2,540.36"
28/03/2024,DEB,ALDI 77 PORTSMOUTH,27.45,,"2,512.91"
"""

# A US checking account: m/d/Y, signed Amount with $ and thousands, quoted descriptions.
US_CSV = """Posting Date,Description,Amount,Type,Balance
03/29/2024,"WHOLE FOODS MARKET #10234, AUSTIN TX",-$86.12,DEBIT,"$4,198.20"
03/25/2024,"UBER *TRIP HELP.UBER.COM",-$23.40,DEBIT,"$4,284.32"
03/20/2024,"CHEVRON 0091234",-$48.00,DEBIT,"$4,307.72"
03/15/2024,"PAYROLL ACME ROBOTICS INC","$3,120.55",CREDIT,"$4,355.72"
03/14/2024,"SPOTIFY USA",-$11.99,DEBIT,"$1,235.17"
03/12/2024,"AMAZON MKTPLACE PMTS",-$64.30,DEBIT,"$1,247.16"
03/05/2024,"MONTHLY SERVICE FEE",-$12.00,FEE,"$1,311.46"
03/01/2024,"RENT PAYMENT - OAK STREET APTS","-$1,450.00",DEBIT,"$1,323.46"
"""

# A German Girokonto: cp1252, semicolons, d.m.Y, decimal commas with "." thousands, a currency column.
DE_CSV = """Kontonummer:;DE12 5001 0517 0648 4898 90
Zeitraum:;01.03.2024 - 31.03.2024

Buchungstag;Valutadatum;Buchungstext;Verwendungszweck;Beguenstigter/Zahlungspflichtiger;Betrag;Waehrung
28.03.2024;28.03.2024;Lastschrift;Einkauf 27.03.;REWE Markt GmbH;-62,47;EUR
25.03.2024;25.03.2024;Gutschrift;Gehalt März 2024;Nordwind Obstgärten GmbH;3.245,10;EUR
21.03.2024;21.03.2024;Kartenzahlung;Tankstelle 4411;ARAL AG;-71,20;EUR
18.03.2024;18.03.2024;Lastschrift;Kundennr. 881234 Strom;Stadtwerke Appeltal;-84,00;EUR
15.03.2024;15.03.2024;Dauerauftrag;Miete April;Hausverwaltung Keller;-980,00;EUR
11.03.2024;11.03.2024;Kartenzahlung;Bäckerei am Markt;Bäckerei Sonnenkorn;-8,90;EUR
04.03.2024;04.03.2024;Entgelt;Kontoführung Februar;;-4,95;EUR
01.03.2024;01.03.2024;Kartenzahlung;Fahrkarte;DB Vertrieb GmbH;-39,90;EUR
"""


def sample_files() -> dict[str, bytes]:
    """Relative path -> exact bytes of every sample file."""
    return {
        "README.md": README_MD.encode("utf-8"),
        "documents/quarterly-report-q1-2024.pdf": make_pdf(
            QUARTERLY, "Quarterly Report Q1 2024", "Northwind Orchards finance team", "20240415090000"
        ),
        "documents/invoice-2024-0042.pdf": make_pdf(
            INVOICE, "Invoice 2024-0042", "Lumen Print & Design Ltd", "20240312100000"
        ),
        "documents/employee-handbook.docx": make_docx(
            HANDBOOK_BLOCKS, "Employee Handbook", "Northwind Orchards HR", "2024-02-01T09:00:00Z", pages=2
        ),
        "documents/web/press-release.html": PRESS_HTML.encode("utf-8"),
        "documents/web/archive/2023/product-faq.html": FAQ_HTML.encode("utf-8"),
        "notes/meeting-notes.md": MEETING_MD.encode("utf-8"),
        "notes/Café notes – été 2024.txt": CAFE_TXT.encode("utf-8"),
        "notes/lagerbestand-cp1252.txt": LEGACY_TXT.encode("cp1252"),
        "data/inventory.json": (json.dumps(INVENTORY, indent=2, ensure_ascii=False) + "\n").encode("utf-8"),
        "data/contacts.csv": CONTACTS_CSV.encode("utf-8"),
        "statements/uk-current-account-2024-03.csv": UK_CSV.replace("\n", "\r\n").encode("utf-8"),
        "statements/us-checking-2024-03.csv": US_CSV.encode("utf-8"),
        "statements/de-girokonto-2024-03.csv": DE_CSV.replace("\n", "\r\n").encode("cp1252"),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="folder to write (default data/samples)")
    parser.add_argument("--check", action="store_true", help="only compare; exit 1 when a file differs")
    args = parser.parse_args(argv)
    files = sample_files()
    total = sum(len(b) for b in files.values())
    if args.check:
        bad = [rel for rel, data in files.items()
               if not (args.out / rel).is_file() or (args.out / rel).read_bytes() != data]
        for rel in bad:
            print(f"differs: {rel}")
        return 1 if bad else 0
    for rel, data in files.items():
        target = args.out / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)
    print(f"wrote {len(files)} files, {total:,} bytes, to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
