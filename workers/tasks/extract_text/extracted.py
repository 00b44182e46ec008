"""What a format's extractor returns, and the helpers the extractors share."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REASON_CHARS = 200  # characters of a document library's error kept in the item's reason


@dataclass
class Extracted:
    """A document's text and metadata as its format's extractor found them (the task tidies and chunks it)."""

    text: str
    pages: int | None = None
    encoding: str | None = None  # text formats: the encoding the bytes were decoded with
    meta: dict[str, Any] = field(default_factory=dict)
    page_starts: list[int] | None = None  # character offset where each PDF page starts
    headings: list[tuple[int, str]] = field(default_factory=list)  # (character offset, heading) in document order
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
