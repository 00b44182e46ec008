"""Text formats read with the standard library: HTML (html.parser), Markdown and plain text."""

from __future__ import annotations

import contextlib
import re
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

from workers.registry import ItemError
from workers.tasks._common import check_is_text, decode_text
from workers.tasks.extract_text.chunks import tidy
from workers.tasks.extract_text.extracted import Extracted, one_line, place_headings, short_reason

# -- HTML -------------------------------------------------------------------------------------------
_BLOCK_TAGS = {
    "address", "article", "aside", "blockquote", "br", "dd", "div", "dl", "dt", "fieldset",
    "figcaption", "figure", "footer", "form", "h1", "h2", "h3", "h4", "h5", "h6", "header", "hr",
    "li", "main", "nav", "ol", "p", "pre", "section", "table", "tr", "ul", "caption", "summary",
}  # fmt: skip
_SKIP_TAGS = {"script", "style", "noscript", "template", "svg", "math", "iframe", "object"}
_CHARSET = re.compile(rb"""<meta[^>]+charset\s*=\s*["']?\s*([A-Za-z0-9_.:-]+)""", re.I)


_HEADING_TAGS = {"h1", "h2", "h3", "h4", "h5", "h6"}


class _HTMLText(HTMLParser):
    """The visible text of a page (a line per block, `` | `` between table cells), its headings,
    title and meta."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self.skip = 0
        self.in_title = False
        self.title: list[str] = []
        self.meta: dict[str, str] = {}
        self.heading: list[str] | None = None  # the text of the heading being read
        self.headings: list[str] = []
        self.pre = 0  # inside <pre>: line ends are line ends (elsewhere they are spaces)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in _SKIP_TAGS:
            self.skip += 1
        elif tag == "title":
            self.in_title = True
        elif tag == "meta":
            a = {k: v or "" for k, v in attrs}
            name = (a.get("name") or a.get("property") or "").lower()
            if name in ("author", "description", "og:title") and a.get("content"):
                self.meta.setdefault(name, a["content"])
        elif tag == "html":
            lang = dict(attrs).get("lang")
            if lang:
                self.meta["language"] = lang
        if tag in _HEADING_TAGS and not self.skip:
            self.heading = []
        elif tag == "pre":
            self.pre += 1
        if tag in _BLOCK_TAGS:
            self.parts.append("\n")
        elif tag in ("td", "th"):
            self.parts.append(" | ")

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag not in _SKIP_TAGS:  # <svg/> and friends have no content to skip
            self.handle_starttag(tag, attrs)

    def handle_endtag(self, tag: str) -> None:
        if tag in _SKIP_TAGS:
            self.skip = max(0, self.skip - 1)
        elif tag == "title":
            self.in_title = False
        elif tag == "pre":
            self.pre = max(0, self.pre - 1)
        elif tag in _HEADING_TAGS and self.heading is not None:
            heading = " ".join("".join(self.heading).split())
            if heading:
                self.headings.append(heading)
            self.heading = None
        if tag in _BLOCK_TAGS:
            self.parts.append("\n")

    def handle_data(self, data: str) -> None:
        if self.in_title:
            self.title.append(data)
        elif not self.skip:
            self.parts.append(data if self.pre else " ".join(data.split("\n")))
            if self.heading is not None:
                self.heading.append(data)


def _decode_html(data: bytes, encoding: str) -> tuple[str, str]:
    """Decoded as the option says; with ``auto``, a legacy guess (cp1252, latin-1) gives way to the
    charset the page declares."""
    if encoding.lower() != "auto":
        return decode_text(data, encoding)
    text, used = decode_text(data)
    declared = _CHARSET.search(data[:4096]) if used in ("cp1252", "latin-1") else None
    if declared:
        charset = declared.group(1).decode("ascii")
        with contextlib.suppress(LookupError):  # an unknown charset: keep the guess
            text, used = data.decode(charset, "replace"), charset.lower()
    return text, used


def extract_html(path: Path, data: bytes, encoding: str) -> Extracted:
    """The visible text (no scripts, styles, SVG ...); headings h1-h6; title, author, description, language."""
    text, used = _decode_html(data, encoding)
    check_is_text(text)
    parser = _HTMLText()
    try:
        parser.feed(text)
        parser.close()
    except Exception as exc:  # html.parser is lenient; this is belt and braces
        raise ItemError(f"not valid HTML ({short_reason(exc)})") from None
    body = tidy("".join(parser.parts))
    meta = {
        "title": one_line("".join(parser.title)) or one_line(parser.meta.get("og:title")),
        "author": one_line(parser.meta.get("author")),
        "description": one_line(parser.meta.get("description")),
        "language": parser.meta.get("language"),
    }
    return Extracted(body, encoding=used, meta=meta, headings=place_headings(body, parser.headings))


# -- Markdown, plain text ---------------------------------------------------------------------------
_MD_RULES = [
    (re.compile(r"^[ \t]{0,3}(\S.*?)[ \t]*\n[ \t]{0,3}(?:=+|-+)[ \t]*$", re.M), r"\1"),  # setext headings
    (re.compile(r"^[ \t]{0,3}([-*_])([ \t]*\1){2,}[ \t]*$", re.M), ""),  # horizontal rules
    (re.compile(r"^[ \t]*\|?([ \t]*:?-{3,}:?[ \t]*\|)+[ \t]*(:?-{3,}:?)?[ \t]*$", re.M), ""),  # table separator rows
    (re.compile(r"^[ \t]{0,3}\[[^\]\n]+\]:[ \t]+\S+.*$", re.M), ""),  # link reference definitions
    (re.compile(r"^[ \t]{0,3}#{1,6}[ \t]+(.*?)[ \t]*#*[ \t]*$", re.M), r"\1"),  # ATX headings
    (re.compile(r"^[ \t]{0,3}>[ \t]?", re.M), ""),  # block quotes
    (re.compile(r"^([ \t]*)(?:[-*+]|\d+[.)])[ \t]+(\[[ xX]\][ \t]+)?", re.M), r"\1"),  # list markers
    (re.compile(r"!\[([^\]\n]*)\]\([^)\n]*\)"), r"\1"),  # images -> alt text
    (re.compile(r"\[([^\]\n]+)\]\([^)\n]*\)"), r"\1"),  # inline links -> text
    (re.compile(r"\[([^\]\n]+)\]\[[^\]\n]*\]"), r"\1"),  # reference links -> text
    (re.compile(r"<(https?://[^>\s]+)>"), r"\1"),  # autolinks
    (re.compile(r"</?[A-Za-z][^>\n]*>"), ""),  # inline HTML tags
    (re.compile(r"(\*\*|__)(?=\S)(.+?)(?<=\S)\1"), r"\2"),  # bold
    (re.compile(r"(?<![\w*])\*(?=\S)(.+?)(?<=\S)\*(?![\w*])"), r"\1"),  # *em*
    (re.compile(r"(?<!\w)_(?=\S)(.+?)(?<=\S)_(?!\w)"), r"\1"),  # _em_
    (re.compile(r"~~(.+?)~~"), r"\1"),  # strikethrough
    (re.compile(r"`([^`\n]*)`"), r"\1"),  # inline code
    (re.compile(r"^[ \t]*\|[ \t]*|[ \t]*\|[ \t]*$", re.M), ""),  # outer table pipes
]
_INLINE_RULES = _MD_RULES[7:]  # from images on: what a heading may contain too
_HEADING = re.compile(_MD_RULES[4][0].pattern + "|" + _MD_RULES[0][0].pattern, re.M)  # ATX or setext
_SETEXT_LIST = re.compile(r"^[ \t]{0,3}(?:[-*+]|\d+[.)])[ \t]")  # "- item\n---" is a list and a rule
_FRONT_MATTER = re.compile(r"\A---\s*\n(.*?)\n(?:---|\.\.\.)\s*(\n|\Z)", re.S)
_FRONT_KEYS = {"title": "title", "author": "author", "date": "created"}  # front matter key -> result key
_FENCE = re.compile(r"^([ \t]{0,3})(`{3,}|~{3,})")
_LIST_ITEM = re.compile(r"^[ \t]*(?:[-*+]|\d+[.)])[ \t]")


def extract_markdown(path: Path, data: bytes, encoding: str) -> Extracted:
    """The text without Markdown's markup, code blocks as they are (indentation kept); headings;
    title (front matter, else the first heading), author, date."""
    text, used = decode_text(data, encoding)
    check_is_text(text)
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    meta: dict[str, Any] = {}
    front = _FRONT_MATTER.match(text)
    if front:
        for line in front.group(1).splitlines():
            key, sep, value = line.partition(":")
            if sep and key.strip().lower() in _FRONT_KEYS:
                meta[_FRONT_KEYS[key.strip().lower()]] = value.strip().strip("\"'")
        text = text[front.end():]
    parts: list[str] = []
    headings: list[str] = []
    for segment, is_code in markdown_segments(text):
        if is_code:
            parts.append(segment)
        else:
            headings.extend(_md_headings(segment))
            parts.append(tidy(_strip_markdown(segment)))
    body = "\n\n".join(part for part in parts if part)
    if headings and "title" not in meta:
        meta["title"] = headings[0]
    return Extracted(body, encoding=used, meta=meta, headings=place_headings(body, headings))


def _strip_markdown(text: str) -> str:
    for pattern, repl in _MD_RULES:
        text = pattern.sub(repl, text)
    return text


def _md_headings(text: str) -> list[str]:
    """The ATX (``# Title``) and setext (``Title`` over ``===``) headings, markup stripped."""
    headings = []
    for match in _HEADING.finditer(text):
        heading = match.group(1) if match.group(1) is not None else match.group(2)
        if match.group(1) is None and _SETEXT_LIST.match(heading):
            continue
        for pattern, repl in _INLINE_RULES:
            heading = pattern.sub(repl, heading)
        heading = " ".join(heading.split())
        if heading:
            headings.append(heading)
    return headings


def markdown_segments(text: str) -> list[tuple[str, bool]]:
    """The text cut into (segment, is_code): fenced code blocks (``` or ~~~, the fences left out)
    and indented ones (4 spaces or a tab after a blank line, not in a list) become code segments,
    dedented by their own indentation, trailing spaces and surrounding blank lines dropped."""
    segments: list[tuple[str, bool]] = []
    prose: list[str] = []
    lines = text.split("\n")
    index = 0
    while index < len(lines):
        line = lines[index]
        fence = _FENCE.match(line)
        if fence or _starts_indented_code(line, prose):
            segments.append(("\n".join(prose), False))
            prose = []
            code, index = _fenced(lines, index, fence) if fence else _indented(lines, index)
            segments.append((_code_text(code), True))
            continue
        prose.append(line)
        index += 1
    segments.append(("\n".join(prose), False))
    return [(segment, is_code) for segment, is_code in segments if segment.strip()]


def _starts_indented_code(line: str, prose: list[str]) -> bool:
    """An indented code block starts after a blank line, not inside a list item."""
    if not line.strip() or not line.startswith(("    ", "\t")):
        return False
    if prose and prose[-1].strip():
        return False  # indented text continuing a paragraph is not code
    previous = next((text for text in reversed(prose) if text.strip()), "")
    return not (_LIST_ITEM.match(previous) or previous[:1] in (" ", "\t"))


def _fenced(lines: list[str], index: int, fence: re.Match[str]) -> tuple[list[str], int]:
    """A fenced block's lines (dedented by the fence's indentation) and the index after its end."""
    indent, marker = len(fence.group(1)), fence.group(2)
    closing = re.compile(rf"^[ \t]{{0,3}}{re.escape(marker[0])}{{{len(marker)},}}[ \t]*$")
    code = []
    index += 1
    while index < len(lines) and not closing.match(lines[index]):
        line = lines[index]
        strip = min(indent, len(line) - len(line.lstrip(" ")))
        code.append(line[strip:])
        index += 1
    return code, index + 1  # past the closing fence (or the end: an open fence runs to the end)


def _indented(lines: list[str], index: int) -> tuple[list[str], int]:
    """An indented block's lines (less one level of indentation) and the index after it."""
    code = []
    while index < len(lines) and (not lines[index].strip() or lines[index].startswith(("    ", "\t"))):
        line = lines[index]
        code.append(line[1:] if line.startswith("\t") else line[4:])
        index += 1
    return code, index


def _code_text(code: list[str]) -> str:
    return "\n".join(line.rstrip() for line in code).strip("\n")


def extract_plain(path: Path, data: bytes, encoding: str) -> Extracted:
    """The text as it is, tidied."""
    text, used = decode_text(data, encoding)
    check_is_text(text)
    return Extracted(tidy(text), encoding=used)
