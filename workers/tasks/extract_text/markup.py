"""Text formats read with the standard library: HTML (html.parser), Markdown and plain text."""

from __future__ import annotations

import contextlib
import re
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

from workers.registry import ItemError
from workers.tasks._common import check_is_text, decode_text
from workers.tasks.extract_text.extracted import Extracted, one_line, short_reason

# -- HTML -------------------------------------------------------------------------------------------
_BLOCK_TAGS = {
    "address", "article", "aside", "blockquote", "br", "dd", "div", "dl", "dt", "fieldset",
    "figcaption", "figure", "footer", "form", "h1", "h2", "h3", "h4", "h5", "h6", "header", "hr",
    "li", "main", "nav", "ol", "p", "pre", "section", "table", "tr", "ul", "caption", "summary",
}  # fmt: skip
_SKIP_TAGS = {"script", "style", "noscript", "template", "svg", "math", "iframe", "object"}
_CHARSET = re.compile(rb"""<meta[^>]+charset\s*=\s*["']?\s*([A-Za-z0-9_.:-]+)""", re.I)


class _HTMLText(HTMLParser):
    """The visible text of a page (a line per block, `` | `` between table cells), its title and meta."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self.skip = 0
        self.in_title = False
        self.title: list[str] = []
        self.meta: dict[str, str] = {}

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
        if tag in _BLOCK_TAGS:
            self.parts.append("\n")

    def handle_data(self, data: str) -> None:
        if self.in_title:
            self.title.append(data)
        elif not self.skip:
            self.parts.append(data)


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
    """The visible text (no scripts, styles, SVG ...); title, author, description, language."""
    text, used = _decode_html(data, encoding)
    check_is_text(text)
    parser = _HTMLText()
    try:
        parser.feed(text)
        parser.close()
    except Exception as exc:  # html.parser is lenient; this is belt and braces
        raise ItemError(f"not valid HTML ({short_reason(exc)})") from None
    body = "".join(parser.parts)
    body = "\n".join(" ".join(line.split()) for line in body.split("\n"))
    meta = {
        "title": one_line("".join(parser.title)) or one_line(parser.meta.get("og:title")),
        "author": one_line(parser.meta.get("author")),
        "description": one_line(parser.meta.get("description")),
        "language": parser.meta.get("language"),
    }
    return Extracted(body, encoding=used, meta=meta)


# -- Markdown, plain text ---------------------------------------------------------------------------
_MD_RULES = [
    (re.compile(r"^[ \t]{0,3}(`{3,}|~{3,}).*$", re.M), ""),  # code fence markers (the code is kept)
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
_INLINE_RULES = _MD_RULES[7:]  # from images on: what a title may contain too
_FRONT_MATTER = re.compile(r"\A---\s*\n(.*?)\n(?:---|\.\.\.)\s*(\n|\Z)", re.S)
_FIRST_HEADING = re.compile(r"^[ \t]{0,3}#{1,6}[ \t]+(.*?)[ \t]*#*[ \t]*$", re.M)
_FRONT_KEYS = {"title": "title", "author": "author", "date": "created"}  # front matter key -> result key


def extract_markdown(path: Path, data: bytes, encoding: str) -> Extracted:
    """The text without Markdown's markup; title (front matter, else the first heading), author, date."""
    text, used = decode_text(data, encoding)
    check_is_text(text)
    text = text.replace("\r\n", "\n")
    meta: dict[str, Any] = {}
    front = _FRONT_MATTER.match(text)
    if front:
        for line in front.group(1).splitlines():
            key, sep, value = line.partition(":")
            if sep and key.strip().lower() in _FRONT_KEYS:
                meta[_FRONT_KEYS[key.strip().lower()]] = value.strip().strip("\"'")
        text = text[front.end():]
    if "title" not in meta:
        heading = _FIRST_HEADING.search(text)
        if heading:
            meta["title"] = heading.group(1)
    for pattern, repl in _MD_RULES:
        text = pattern.sub(repl, text)
    if meta.get("title"):
        for pattern, repl in _INLINE_RULES:
            meta["title"] = pattern.sub(repl, meta["title"])
    return Extracted(text, encoding=used, meta=meta)


def extract_plain(path: Path, data: bytes, encoding: str) -> Extracted:
    """The text as it is (tidied by the task)."""
    text, used = decode_text(data, encoding)
    check_is_text(text)
    return Extracted(text, encoding=used)
