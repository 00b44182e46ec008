"""What a format's extractor returns, and the helpers the extractors share."""

from __future__ import annotations

import bisect
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REASON_CHARS = 200  # characters of a document library's error kept in the item's reason


@dataclass
class Extracted:
    """A document's text (tidy: see chunks.tidy) and metadata as its format's extractor found them."""

    text: str
    pages: int | None = None
    encoding: str | None = None  # text formats: the encoding the bytes were decoded with
    meta: dict[str, Any] = field(default_factory=dict)
    page_starts: list[int] | None = None  # character offset where each PDF page starts
    headings: list[tuple[int, str]] = field(default_factory=list)  # (character offset in text, heading), in order
    warnings: list[str] = field(default_factory=list)  # what a person should know (no text layer, garbage ...)


# (path, the file's bytes, the encoding option) -> Extracted, or ItemError with a readable reason
Extractor = Callable[[Path, bytes, str], Extracted]


def one_line(value: Any) -> str | None:
    """A metadata value as one line of text, or None when it has none."""
    if value is None:
        return None
    return " ".join(str(value).split()) or None


def short_reason(exc: BaseException) -> str:
    """A document library's exception as a short one-line reason."""
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text[:REASON_CHARS]


MAX_HEADING_WORDS = 40  # of a heading, looked for in the text (longer ones are cut there)
HEADING_REACH = 5_000  # characters after the previous heading a wrapped heading is looked for in


def place_headings(text: str, headings: Iterable[str]) -> list[tuple[int, str]]:
    """(offset, heading) for each heading found in ``text`` in order, each at a line start after the
    previous one: a line that is the heading, else (within HEADING_REACH) the heading's words with
    other whitespace (wrapped over lines), any case. Headings not found are left out."""
    lines: dict[str, list[int]] = {}
    offset = 0
    for line in text.split("\n"):
        lines.setdefault(line.strip(), []).append(offset + len(line) - len(line.lstrip()))
        offset += len(line) + 1
    placed: list[tuple[int, str]] = []
    start = 0
    for heading in headings:
        title = " ".join(heading.split())
        found = _line_at(lines.get(title, []), start) if title else None
        if found is None and title:
            found = _wrapped_at(text, title, start)
        if found is not None:
            placed.append((found, title))
            start = found + 1
    return placed


def _line_at(offsets: list[int], start: int) -> int | None:
    """The first of a line's (sorted) offsets at or after ``start``."""
    index = bisect.bisect_left(offsets, start)
    return offsets[index] if index < len(offsets) else None


def _wrapped_at(text: str, title: str, start: int) -> int | None:
    """Where the heading's words begin a line (any whitespace between them, any case), soon after ``start``."""
    words = r"\s+".join(map(re.escape, title.split()[:MAX_HEADING_WORDS]))
    pattern = re.compile(r"\n[ \t]*(" + words + ")", re.IGNORECASE)  # a literal first character: a fast scan
    found = pattern.match("\n" + text[:HEADING_REACH]) if start == 0 else None
    if found is not None:
        return found.start(1) - 1
    found = pattern.search(text, max(start - 1, 0), start + HEADING_REACH)
    return None if found is None else found.start(1)
