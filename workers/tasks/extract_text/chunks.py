"""The extracted text made tidy, and cut into overlapping chunks (``<name>.chunks.jsonl``)."""

from __future__ import annotations

import bisect
import json
import re
from collections.abc import Iterator
from typing import Any

_SPACE = re.compile(r"\s")
_WS_LINE = re.compile(r"[ \t\u00a0]+")
_MANY_BLANKS = re.compile(r"\n{3,}")


def tidy(text: str) -> str:
    """One kind of line end, single spaces within lines, at most one blank line in a row."""
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    lines = [_WS_LINE.sub(" ", line).strip() for line in text.split("\n")]
    return _MANY_BLANKS.sub("\n\n", "\n".join(lines)).strip()


def chunk_spans(text: str, size: int, overlap: int) -> Iterator[tuple[int, int]]:
    """(start, end) character spans of at most ``size`` characters, sharing about ``overlap``.

    A chunk ends at the last whitespace in its final quarter when there is one, and the next chunk
    starts ``overlap`` characters before that end, moved forward to the start of a word.
    """
    n = len(text)
    start = 0
    while start < n and text[start].isspace():
        start += 1
    while start < n:
        end = min(start + size, n)
        if end < n and not text[end].isspace():
            lo = start + (size * 3) // 4
            cut = max(text.rfind(" ", lo, end), text.rfind("\n", lo, end), text.rfind("\t", lo, end))
            if cut > start:
                end = cut
        stop = end
        while stop > start and text[stop - 1].isspace():
            stop -= 1
        yield start, stop
        if end >= n:
            return
        nxt = max(end - overlap, start + 1)
        if nxt < end and not text[nxt - 1].isspace():
            # move to the start of the next word, but never past the end of this chunk
            m = _SPACE.search(text, nxt, end)
            nxt = m.end() if m else nxt
        while nxt < n and text[nxt].isspace():
            nxt += 1
        start = nxt


def chunk_lines(text: str, source: str, size: int, overlap: int, page_starts: list[int] | None) -> list[str]:
    """One JSON line per chunk: ``id, source, chunk, start, end``, for a PDF ``page`` and ``page_end``
    (1-based, where the chunk starts and ends), then ``text``."""
    lines = []
    for n, (start, end) in enumerate(chunk_spans(text, size, overlap)):
        record: dict[str, Any] = {"id": f"{source}#{n}", "source": source, "chunk": n, "start": start, "end": end}
        if page_starts:
            record["page"] = bisect.bisect_right(page_starts, start)
            record["page_end"] = bisect.bisect_right(page_starts, max(start, end - 1))
        record["text"] = text[start:end]
        lines.append(json.dumps(record, ensure_ascii=False))
    return lines
