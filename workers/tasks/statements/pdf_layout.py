"""Page geometry for PDF statements: words -> lines -> phrases, and the table header's columns.

A phrase is a run of words on one line with gaps no wider than about half a line's height: a
table cell, normally. Money is recognised by shape (two decimals, a sign or CR/DR), so a
reference number inside a description is never taken for an amount.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from workers.pdf import PdfPage, Word
from workers.tasks.statements.dialect import norm_header, role_of

PHRASE_GAP = 0.45  # words closer than this many line heights belong to one phrase
_SAME_LINE = 0.5  # words whose vertical centres differ by less than this many heights share a line

MONEY = re.compile(
    r"^(?:[-+\u2212(]\s*)?(?:[£€$]|EUR|GBP|USD|CHF)?\s*[-+\u2212]?\s*"
    r"\d{1,3}(?:(?:[,.'\u00a0\u202f ]\d{3})*|\d*)[.,]\d{2}"
    r"\s*(?:[-+\u2212)]|\s?(?:CR|DR|Cr|Dr|S|H))?\s*(?:[£€$]|EUR|GBP|USD|CHF)?$"
)
DATE_LIKE = re.compile(
    r"^(?:\d{4}-\d{2}-\d{2}|\d{1,2}[./-]\d{1,2}(?:[./-](?:\d{4}|\d{2}))?\.?"
    r"|\d{1,2}\.?[ -][^\W\d_]{3,9}\.?(?:[ -]\d{2,4})?|[^\W\d_]{3,9}\.? \d{1,2}(?:,? \d{4})?)$"
)


def is_money(text: str) -> bool:
    return bool(MONEY.match(text.strip()))


@dataclass
class Phrase:
    words: list[Word]

    @property
    def x0(self) -> float:
        return self.words[0].x0

    @property
    def x1(self) -> float:
        return self.words[-1].x1

    @property
    def text(self) -> str:
        return " ".join(w.text for w in self.words)


@dataclass
class Line:
    page: int
    number: int  # 1-based on its page, top to bottom
    y0: float
    y1: float
    words: list[Word]
    phrases: list[Phrase] = field(default_factory=list)

    @property
    def text(self) -> str:
        return " ".join(w.text for w in self.words)

    @property
    def height(self) -> float:
        return max(self.y1 - self.y0, 1.0)

    @property
    def ref(self) -> int:
        """The line's number in the item's output: page x 1000 + line on the page."""
        return self.page * 1000 + self.number


def page_lines(page: PdfPage) -> list[Line]:
    """The page's words grouped into lines (top to bottom), each line's words left to right."""
    words = sorted(page.words(), key=lambda w: (-(w.y0 + w.y1) / 2, w.x0))
    lines: list[Line] = []
    for word in words:
        centre = (word.y0 + word.y1) / 2
        current = lines[-1] if lines else None
        if current is not None and abs(centre - (current.y0 + current.y1) / 2) < _SAME_LINE * current.height:
            current.words.append(word)
            current.y0, current.y1 = min(current.y0, word.y0), max(current.y1, word.y1)
        else:
            lines.append(Line(page.number, len(lines) + 1, word.y0, word.y1, [word]))
    for line in lines:
        line.words.sort(key=lambda w: w.x0)
        line.phrases = _phrases(line)
    return lines


def _phrases(line: Line) -> list[Phrase]:
    phrases: list[Phrase] = []
    words: list[Word] = []
    for word in line.words:
        if words and word.x0 - words[-1].x1 > PHRASE_GAP * line.height:
            phrases += _split(words)
            words = []
        words.append(word)
    if words:
        phrases += _split(words)
    return phrases


def _split(words: list[Word]) -> list[Phrase]:
    """One phrase, or a leading date / trailing amount split off a phrase that ran into them."""
    if DATE_LIKE.match(" ".join(w.text for w in words)):
        return [Phrase(words)]
    for size in (2, 1):
        if len(words) > size and is_money(" ".join(w.text for w in words[-size:])):
            return [*_split(words[:-size]), Phrase(words[-size:])]
    for size in (3, 2, 1):
        head = " ".join(w.text for w in words[:size])
        if len(words) > size and DATE_LIKE.match(head) and not is_money(head):
            return [Phrase(words[:size]), *_split(words[size:])]
    return [Phrase(words)]


@dataclass(frozen=True)
class Column:
    role: str  # date, description, amount, debit, credit, balance, indicator, date2
    x0: float
    x1: float
    title: str
    currency_hint: str | None
    language: str


@dataclass(frozen=True)
class Table:
    """A transaction table's columns, from its header line."""

    columns: tuple[Column, ...]

    def column(self, role: str) -> Column | None:
        return next((c for c in self.columns if c.role == role), None)

    @property
    def money(self) -> list[Column]:
        return [c for c in self.columns if c.role in ("amount", "debit", "credit", "balance")]

    def after(self, column: Column) -> float:
        """Where the next column to the right starts (a text column's zone ends there)."""
        later = [c.x0 for c in self.columns if c.x0 > column.x0]
        return min(later) if later else float("inf")


def table_from_header(line: Line) -> Table | None:
    """The columns a header line names; None unless it names a date and an amount (or debit/credit)."""
    columns: list[Column] = []
    for phrase in line.phrases:
        columns += _header_cells(phrase)
    roles = [c.role for c in columns]
    if "date" not in roles or not ({"amount", "debit", "credit"} & set(roles)):
        return None
    seen: set[str] = set()
    kept = []
    for column in sorted(columns, key=lambda c: c.x0):
        role = column.role
        if role in seen and role != "description":
            role = "date2" if role == "date" else "ignored"
        seen.add(role)
        kept.append(Column(role, column.x0, column.x1, column.title, column.currency_hint, column.language))
    amounts = [c for c in kept if c.role in ("debit", "credit", "amount")]
    if not any(c.role == "amount" for c in amounts) and len({c.role for c in amounts}) == 1:
        kept = [Column("amount", c.x0, c.x1, c.title, c.currency_hint, c.language) if c in amounts else c
                for c in kept]  # one of debit/credit alone is a signed amount column
    return Table(tuple(kept))


def _header_cells(phrase: Phrase) -> list[Column]:
    """A header phrase as one column, or as several when it is column titles run together
    (the longest run of words that names a role wins, left to right)."""
    words = phrase.words
    cells, start = [], 0
    while start < len(words):
        for end in range(min(len(words), start + 4), start, -1):
            title = " ".join(w.text for w in words[start:end])
            name, hint = norm_header(title)
            found = role_of(name, exact=end - start > 1) if name else None
            if found:
                cells.append(Column(found[0], words[start].x0, words[end - 1].x1, title, hint, found[2]))
                start = end
                break
        else:
            start += 1
    return cells
