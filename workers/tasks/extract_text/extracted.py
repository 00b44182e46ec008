"""What a format's extractor returns, and the helpers the extractors share."""

from __future__ import annotations

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


def place_headings(text: str, headings: Iterable[str]) -> list[tuple[int, str]]:
    """(offset, heading) for each heading found in ``text`` in order, each at a line start after the
    previous one; whitespace may differ (a heading wrapped over lines is found). Others are left out."""
    placed: list[tuple[int, str]] = []
    start = 0
    for heading in headings:
        words = heading.split()[:MAX_HEADING_WORDS]
        if not words:
            continue
        pattern = re.compile(r"(?:^|(?<=\n))[ \t]*" + r"\s+".join(map(re.escape, words)), re.IGNORECASE)
        found = pattern.search(text, start)
        if found:
            offset = found.start() + len(found.group()) - len(found.group().lstrip())
            placed.append((offset, " ".join(heading.split())))
            start = found.end()
    return placed
