"""Search filters on documents' metadata: ``--where key=value`` (CLI) and the TUI's filter field.

* exact values (case-insensitive): ``title``, ``author``, ``format``, ``lang``, ``pages``, ``words``;
* ``path=GLOB``: the document's full path, or its file name when the pattern has no slash;
* ``after=DATE`` / ``before=DATE`` (``YYYY``, ``YYYY-MM`` or ``YYYY-MM-DD``): the document's date, its
  own creation date when it has one, else its modification date (``after`` includes the day,
  ``before`` does not).

Several filters all apply (AND).
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from batchdesk.errors import BatchdeskError

EXACT_KEYS = ("title", "author", "format", "lang", "pages", "words")
KEYS = (*EXACT_KEYS, "path", "after", "before")
_DATE = re.compile(r"^\d{4}(-\d{2}(-\d{2})?)?$")


class FilterError(BatchdeskError):
    """A filter that cannot be understood; the message says what is allowed."""


@dataclass(frozen=True)
class Filters:
    """Parsed filters (hashable: the engine caches a row mask per distinct set)."""

    exact: tuple[tuple[str, str], ...] = ()
    paths: tuple[str, ...] = ()
    after: str | None = None
    before: str | None = None

    def __bool__(self) -> bool:
        return bool(self.exact or self.paths or self.after or self.before)

    def accepts(self, meta: Mapping[str, Any]) -> bool:
        """Whether a document (its metadata, as the index stores it) passes every filter."""
        for key, value in self.exact:
            if str(meta.get(key) if meta.get(key) is not None else "").casefold() != value:
                return False
        path = str(meta.get("path") or "")
        name = path.replace("\\", "/").rsplit("/", 1)[-1]
        if any(not fnmatch.fnmatch(path if "/" in glob else name, glob) for glob in self.paths):
            return False
        date = str(meta.get("created") or meta.get("modified") or "")
        if self.after and (not date or date[:len(self.after)] < self.after):
            return False
        return not (self.before and (not date or date[:len(self.before)] >= self.before))


def parse_where(pairs: Iterable[str]) -> Filters:
    """``key=value`` strings as :class:`Filters`; a mistake is a :class:`FilterError` naming the keys."""
    exact: list[tuple[str, str]] = []
    paths: list[str] = []
    dates: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        key, value = key.strip().lower(), value.strip()
        if not sep or key not in KEYS:
            raise FilterError(f"--where takes key=value with a key of {', '.join(KEYS)}; not {pair!r}")
        if not value:
            raise FilterError(f"--where {key}= needs a value")
        if key in ("after", "before"):
            if not _DATE.match(value):
                raise FilterError(f"--where {key}={value}: write a date as YYYY, YYYY-MM or YYYY-MM-DD")
            dates[key] = value
        elif key == "path":
            paths.append(value)
        else:
            exact.append((key, value.casefold()))
    return Filters(tuple(sorted(exact)), tuple(paths), dates.get("after"), dates.get("before"))
