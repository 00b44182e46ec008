"""A DOCX package's text in document order, read from its WordprocessingML.

Per section: its headers, its body, its footers (each header or footer part once). In the body,
a line per paragraph and per table row (cells joined by `` | ``), with what hangs off a paragraph
right after it: its text boxes, footnotes (``[1] ...``) and comments (``Comment (author): ...``).
Content controls, nested tables (their rows follow their row), fields' results, hyperlinks and
insertions are read; deletions, field codes and the Fallback copies of text boxes are not. Endnotes
close the document. Headings are paragraphs in a heading style (Title, Heading 1-9, or any style
with an outline level).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

W = "{http://schemas.openxmlformats.org/wordprocessingml/2006/main}"
_MC = "{http://schemas.openxmlformats.org/markup-compatibility/2006}"
_M = "{http://schemas.openxmlformats.org/officeDocument/2006/math}"
_R = "{http://schemas.openxmlformats.org/officeDocument/2006/relationships}"
_REL = "http://schemas.openxmlformats.org/officeDocument/2006/relationships/"
_WRAPPERS = {W + "sdt", W + "sdtContent", W + "customXml", W + "smartTag", W + "ins", W + "moveTo",
             W + "hyperlink", W + "fldSimple", W + "dir", W + "bdo", W + "r", W + "ruby", W + "rubyBase"}
_SKIP = {W + "pPr", W + "rPr", W + "sdtPr", W + "sdtEndPr", W + "del", W + "moveFrom", W + "instrText",
         W + "delText", W + "rt", W + "tblPr", W + "trPr", W + "tcPr", W + "tblGrid", W + "sectPr"}
_CHARS = {W + "tab": "\t", W + "br": "\n", W + "cr": "\n", W + "noBreakHyphen": "-", W + "softHyphen": ""}
_NOTE_KINDS = (None, "normal")  # separators and continuation notices are not text
_HEADING_NAME = re.compile(r"^(?:heading [1-9]|title)$")
MAX_NESTING = 64  # tables in tables in text boxes ... deeper than this are not read (a hostile file)


@dataclass
class WordText:
    """What :func:`read_document` found: lines, the headings among them, explicit page breaks."""

    lines: list[str] = field(default_factory=list)
    headings: list[str] = field(default_factory=list)  # heading paragraphs' text, in order
    page_breaks: int = 0


class _Notes:
    """Footnotes, endnotes and comments of the package, by id, and the numbers given as they are met."""

    def __init__(self, parts: dict[str, Any]) -> None:
        self.footnotes = _by_id(parts.get("footnotes"), W + "footnote")
        self.endnotes = _by_id(parts.get("endnotes"), W + "endnote")
        self.comments = _by_id(parts.get("comments"), W + "comment")
        self.numbers: dict[str, int] = {}


def _by_id(root: Any, tag: str) -> dict[str, Any]:
    if root is None:
        return {}
    return {el.get(W + "id"): el for el in root.iter(tag) if el.get(W + "type") in _NOTE_KINDS}


class _Reader:
    """Walks block content (paragraphs, tables, content controls) and writes lines."""

    def __init__(self, notes: _Notes, heading: Callable[[Any], bool]) -> None:
        self.out = WordText()
        self.notes = notes
        self.is_heading = heading

    def blocks(self, container: Any, depth: int = 0) -> None:
        """A container's blocks (body, cell, text box, note, header ...), a line or more each."""
        if depth > MAX_NESTING:
            return
        for child in _unwrapped(container):
            if child.tag == W + "p":
                self.paragraph(child, depth)
            elif child.tag == W + "tbl":
                self.table(child, depth)

    def paragraph(self, p: Any, depth: int) -> None:
        pieces: list[str] = []
        after: list[Any] = []  # text boxes and notes met in the paragraph, read after it
        self.inline(p, pieces, after, depth)
        text = "".join(pieces)
        self.out.page_breaks += len(p.findall(f".//{W}br[@{W}type='page']")) if depth == 0 else 0
        self.out.lines.append(text)
        line = " ".join(text.split())
        if line and self.is_heading(p):
            self.out.headings.append(line)
        self.after(after, depth)

    def inline(self, element: Any, pieces: list[str], after: list[Any], depth: int) -> None:
        """A paragraph's text: runs and what wraps them, in order; text boxes and notes to ``after``."""
        for child in element:
            tag = child.tag
            if tag in _SKIP or not isinstance(tag, str):
                continue
            if tag in (W + "t", _M + "t"):
                pieces.append(child.text or "")
            elif tag in _CHARS:
                pieces.append(_CHARS[tag])
            elif tag == W + "txbxContent" or tag in _NOTE_TAGS:
                after.append(child)
            elif tag == _MC + "AlternateContent":
                if len(child):
                    self.inline(child[0], pieces, after, depth)  # the Choice, not the Fallback
            else:
                self.inline(child, pieces, after, depth)  # runs, hyperlinks, fields, drawings, math ...

    def after(self, items: list[Any], depth: int) -> None:
        """Text boxes as their own lines; footnotes and comments as one line each."""
        for item in items:
            if item.tag == W + "txbxContent":
                self.blocks(item, depth + 1)
            else:
                self.note(item, depth)

    def note(self, ref: Any, depth: int) -> None:
        note_id = ref.get(W + "id")
        if ref.tag == W + "commentReference":
            comment = self.notes.comments.get(note_id)
            if comment is not None:
                author = " ".join((comment.get(W + "author") or "").split())
                label = f"Comment ({author})" if author else "Comment"
                self.out.lines.append(f"{label}: {self.note_text(comment, depth)}")
        elif ref.tag == W + "footnoteReference" and note_id in self.notes.footnotes:
            number = self.notes.numbers.setdefault(note_id, len(self.notes.numbers) + 1)
            self.out.lines.append(f"[{number}] {self.note_text(self.notes.footnotes[note_id], depth)}")

    def note_text(self, note: Any, depth: int) -> str:
        """A note's paragraphs as one line."""
        inner = _Reader(self.notes, lambda p: False)
        inner.blocks(note, depth + 1)
        return " ".join(" ".join(inner.out.lines).split())

    def table(self, tbl: Any, depth: int) -> None:
        """A line per row, `` | `` between cells; nested tables' rows after their row."""
        for row in _unwrapped(tbl):
            if row.tag != W + "tr":
                continue
            nested = _Reader(self.notes, self.is_heading)
            cells = [self.cell(cell, nested, depth) for cell in _unwrapped(row) if cell.tag == W + "tc"]
            if any(cells) or nested.out.lines:
                self.out.lines.append(" | ".join(cells))
                self.out.lines.extend(nested.out.lines)
                self.out.headings.extend(nested.out.headings)

    def cell(self, tc: Any, nested: _Reader, depth: int) -> str:
        """A cell's paragraphs as one string; its tables, text boxes and notes go to ``nested``."""
        texts = []
        for child in _unwrapped(tc):
            if child.tag == W + "p":
                pieces: list[str] = []
                after: list[Any] = []
                self.inline(child, pieces, after, depth)
                texts.append(" ".join("".join(pieces).split()))
                nested.after(after, depth + 1)
            elif child.tag == W + "tbl":
                nested.table(child, depth + 1)
        return " ".join(text for text in texts if text)


_NOTE_TAGS = {W + "footnoteReference", W + "commentReference"}


def _unwrapped(container: Any) -> Iterator[Any]:
    """A container's children, looking through content controls and custom XML wrappers."""
    for child in container:
        tag = child.tag
        if tag in (W + "sdt", W + "customXml", W + "sdtContent"):
            yield from _unwrapped(child)
        elif tag == _MC + "AlternateContent" and len(child):
            yield from _unwrapped(child[0])
        elif isinstance(tag, str) and tag not in _SKIP:
            yield child


def read_document(body: Any, parts: dict[str, Any], related: Callable[[str], Any], styles: Any) -> WordText:
    """The text of a document ``body`` in order: per section its headers, blocks and footers, then
    the endnotes. ``parts``: the footnotes, endnotes and comments roots by kind; ``related``: a
    relationship id -> that header or footer part's root; ``styles``: the styles part's root."""
    reader = _Reader(_Notes(parts), _heading_test(styles))
    emitted: set[str] = set()
    section: list[Any] = []
    for child in _unwrapped_body(body):
        if child.tag == W + "sectPr":
            _section(reader, section, child, related, emitted)
            section = []
            continue
        section.append(child)
        sect = child.find(f"{W}pPr/{W}sectPr") if child.tag == W + "p" else None
        if sect is not None:
            _section(reader, section, sect, related, emitted)
            section = []
    if section:
        _section(reader, section, None, related, emitted)
    for number, note in enumerate(reader.notes.endnotes.values(), 1):
        reader.out.lines.append(f"[{number}] {reader.note_text(note, 0)}")
    return reader.out


def _unwrapped_body(body: Any) -> Iterator[Any]:
    """The body's blocks, the final section properties included (where the last section ends)."""
    for child in body:
        if child.tag == W + "sectPr":
            yield child
        elif child.tag in (W + "sdt", W + "customXml", W + "sdtContent", _MC + "AlternateContent"):
            yield from _unwrapped(child)
        elif isinstance(child.tag, str) and child.tag not in _SKIP:
            yield child


def _section(reader: _Reader, blocks: list[Any], sect: Any, related: Callable[[str], Any], emitted: set[str]) -> None:
    """One section: headers not read before, its blocks, footers not read before."""
    refs = [] if sect is None else list(sect)
    _parts(reader, refs, W + "headerReference", related, emitted)
    for block in blocks:
        if block.tag == W + "p":
            reader.paragraph(block, 0)
        elif block.tag == W + "tbl":
            reader.table(block, 0)
    _parts(reader, refs, W + "footerReference", related, emitted)


def _parts(reader: _Reader, refs: list[Any], tag: str, related: Callable[[str], Any], emitted: set[str]) -> None:
    for ref in refs:
        rel_id = ref.get(_R + "id")
        if ref.tag == tag and rel_id and rel_id not in emitted:
            emitted.add(rel_id)
            root = related(rel_id)
            if root is not None:
                reader.blocks(root, 1)


def _heading_test(styles: Any) -> Callable[[Any], bool]:
    """Whether a paragraph is a heading: its style (or a style it is based on) is Title or Heading
    1-9 or has an outline level, or the paragraph itself has an outline level."""
    heading_styles = _heading_styles(styles)

    def is_heading(p: Any) -> bool:
        level = p.find(f"{W}pPr/{W}outlineLvl")
        if level is not None:
            return _outline_level(level.get(W + "val"))
        style = p.find(f"{W}pPr/{W}pStyle")
        return style is not None and style.get(W + "val") in heading_styles

    return is_heading


def _heading_styles(styles: Any) -> set[str]:
    """The ids of the paragraph styles that make a heading."""
    if styles is None:
        return set()
    based_on: dict[str, str] = {}
    own: dict[str, bool] = {}
    for style in styles.iter(W + "style"):
        if style.get(W + "type") != "paragraph" or not style.get(W + "styleId"):
            continue
        sid = style.get(W + "styleId")
        name = style.find(W + "name")
        level = style.find(f"{W}pPr/{W}outlineLvl")
        own[sid] = bool(_HEADING_NAME.match(((name.get(W + "val") if name is not None else "") or "").lower())) or (
            level is not None and _outline_level(level.get(W + "val"))
        )
        base = style.find(W + "basedOn")
        if base is not None and base.get(W + "val"):
            based_on[sid] = base.get(W + "val")
    return {sid for sid in own if _inherits_heading(sid, own, based_on)}


def _inherits_heading(sid: str, own: dict[str, bool], based_on: dict[str, str]) -> bool:
    for _ in range(16):  # basedOn chains are short; a cycle ends here
        if own.get(sid):
            return True
        if sid not in based_on:
            return False
        sid = based_on[sid]
    return False


def _outline_level(value: str | None) -> bool:
    """Outline levels 0-8 are headings; 9 is body text."""
    return value is not None and value.isdigit() and int(value) < 9


def related_kinds() -> dict[str, str]:
    """Relationship type -> kind of the note parts read_document takes."""
    return {_REL + kind: kind for kind in ("footnotes", "endnotes", "comments")}
