"""Dates in statements: one format per file, decided from all of its dates and every hint there is.

When a file's dates read in more than one order (all days <= 12), the hints are tried strongest
first: the ``date_order`` option, the statement period (PDF), the order that keeps the dates
sorted, the reading that keeps them close together (a statement covers weeks, not a year), then
the currency and the number format. What only a currency or a default decided is flagged in the
item's warnings.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime
from itertools import pairwise

from workers.tasks.statements.model import StatementError

# (strptime format, shown as, order)
DATE_FORMATS: list[tuple[str, str, str]] = [
    ("%Y-%m-%d", "Y-m-d", "ymd"),
    ("%Y/%m/%d", "Y/m/d", "ymd"),
    ("%Y.%m.%d", "Y.m.d", "ymd"),
    ("%d/%m/%Y", "d/m/Y", "dmy"),
    ("%m/%d/%Y", "m/d/Y", "mdy"),
    ("%d.%m.%Y", "d.m.Y", "dmy"),
    ("%d-%m-%Y", "d-m-Y", "dmy"),
    ("%m-%d-%Y", "m-d-Y", "mdy"),
    ("%d/%m/%y", "d/m/y", "dmy"),
    ("%m/%d/%y", "m/d/y", "mdy"),
    ("%d.%m.%y", "d.m.y", "dmy"),
    ("%d-%m-%y", "d-m-y", "dmy"),
    ("%d %b %Y", "d Mon Y", "dmy"),
    ("%d-%b-%Y", "d-Mon-Y", "dmy"),
    ("%d-%b-%y", "d-Mon-y", "dmy"),
    ("%d %b %y", "d Mon y", "dmy"),
    ("%b %d, %Y", "Mon d, Y", "mdy"),
    ("%b %d %Y", "Mon d Y", "mdy"),
    ("%Y%m%d", "Ymd", "ymd"),
]
# Dates printed without a year (PDF statements); the year comes from the statement period.
YEARLESS_FORMATS: list[tuple[str, str, str]] = [
    ("%d.%m.", "d.m.", "dmy"),
    ("%d.%m", "d.m", "dmy"),
    ("%d/%m", "d/m", "dmy"),
    ("%m/%d", "m/d", "mdy"),
    ("%d %b", "d Mon", "dmy"),
    ("%d-%b", "d-Mon", "dmy"),
    ("%b %d", "Mon d", "mdy"),
]
_LEAP = 2000  # a year-less date is parsed in a leap year, so 29 Feb reads

_TIME_TAIL = re.compile(
    r"^(.*?\d)(?:[ T]+\d{1,2}:\d{2}(?::\d{2}(?:\.\d+)?)?\s*(?:[APap][Mm])?(?:Z|[+-]\d{2}:?\d{2})?)$"
)
_MONTHS = {
    "jan": "Jan", "january": "Jan", "januar": "Jan", "jänner": "Jan", "janvier": "Jan",
    "feb": "Feb", "february": "Feb", "februar": "Feb", "février": "Feb", "fevrier": "Feb",
    "mar": "Mar", "march": "Mar", "märz": "Mar", "maerz": "Mar", "mrz": "Mar", "mär": "Mar", "mars": "Mar",
    "apr": "Apr", "april": "Apr", "avril": "Apr",
    "may": "May", "mai": "May",
    "jun": "Jun", "june": "Jun", "juni": "Jun", "juin": "Jun",
    "jul": "Jul", "july": "Jul", "juli": "Jul", "juillet": "Jul",
    "aug": "Aug", "august": "Aug", "août": "Aug", "aout": "Aug",
    "sep": "Sep", "sept": "Sep", "september": "Sep", "septembre": "Sep",
    "oct": "Oct", "october": "Oct", "okt": "Oct", "oktober": "Oct", "octobre": "Oct",
    "nov": "Nov", "november": "Nov", "novembre": "Nov",
    "dec": "Dec", "december": "Dec", "dez": "Dec", "dezember": "Dec", "décembre": "Dec", "decembre": "Dec",
}  # fmt: skip
_MONTH_WORD = re.compile(r"(?<![^\W\d_])([^\W\d_]{3,9})\.?(?![^\W\d_])")
_DAY_DOT = re.compile(r"^(\d{1,2})\.\s+(?=[A-Za-z])")  # "5. Mar 2024" -> "5 Mar 2024"
STRONG_BASES = frozenset({"unambiguous", "option", "period", "order", "span"})


def clean_date(raw: str) -> str:
    """A date cell without quotes, a time of day, or a month name in another language."""
    text = raw.strip().strip("'\"")
    m = _TIME_TAIL.match(text)
    text = m.group(1) if m else text
    text = _MONTH_WORD.sub(lambda w: _MONTHS.get(w.group(1).lower(), w.group(0)), text)
    return _DAY_DOT.sub(r"\1 ", " ".join(text.split()))


def parse_date(text: str, fmt: str, yearless: bool = False) -> date | None:
    try:
        if yearless:
            return datetime.strptime(f"{text} {_LEAP}", f"{fmt} %Y").date()
        value = datetime.strptime(text, fmt).date()
    except ValueError:
        return None
    return value if 1900 <= value.year <= 2200 else None


@dataclass(frozen=True)
class DateChoice:
    """The format a file's dates are read with, and why."""

    fmt: str
    label: str
    order: str  # ymd, dmy or mdy
    ambiguous: bool  # another order reads every date as well
    basis: str  # what decided: unambiguous, option, period, order, span, currency, number format, default
    yearless: bool = False

    def parse(self, raw: str) -> date | None:
        return parse_date(clean_date(raw), self.fmt, self.yearless)


@dataclass(frozen=True)
class DateHints:
    """What else is known about the file when its dates read in more than one order."""

    currency: str | None = None
    decimal: str = "."
    period: tuple[date, date] | None = None


@dataclass
class _Candidate:
    fmt: str
    label: str
    order: str
    parsed: list[date | None]
    yearless: bool

    @property
    def ok(self) -> int:
        return sum(p is not None for p in self.parsed)

    @property
    def dates(self) -> list[date]:
        return [p for p in self.parsed if p is not None]


def _candidates(sample: list[str], order: str, yearless: bool) -> list[_Candidate]:
    found = []
    for fmt, label, fmt_order in YEARLESS_FORMATS if yearless else DATE_FORMATS:
        if order != "auto" and fmt_order != order and fmt_order != "ymd":
            continue
        parsed = [parse_date(v, fmt, yearless) for v in sample]
        if any(p is not None for p in parsed):
            found.append(_Candidate(fmt, label, fmt_order, parsed, yearless))
    return found


def choose_date_format(
    values: list[str], order: str = "auto", hints: DateHints | None = None, allow_yearless: bool = False
) -> DateChoice:
    """Pick the format that parses the most of ``values``, then settle a tie between orders."""
    sample = [v for v in (clean_date(v) for v in values) if v]
    if not sample:
        raise StatementError("the date column is empty")
    scored = _candidates(sample, order, False)
    if allow_yearless and (not scored or max(c.ok for c in scored) * 2 < len(sample)):
        scored = _candidates(sample, order, True) or scored
    if not scored:
        raise StatementError(f"no recognisable dates (e.g. {sample[0]!r})")
    best = max(c.ok for c in scored)
    if best * 2 < len(sample):
        raise StatementError(f"no consistent date format (e.g. {sample[0]!r})")
    tied = [c for c in scored if c.ok == best]
    orders = {c.order for c in tied}
    if len(orders) == 1:
        basis = "option" if order != "auto" else "unambiguous"
        return _choice(tied[0], False, basis)
    winner, basis = _settle(tied, hints or DateHints())
    return _choice(winner, True, basis)


def _choice(c: _Candidate, ambiguous: bool, basis: str) -> DateChoice:
    return DateChoice(c.fmt, c.label, c.order, ambiguous, basis, c.yearless)


def _settle(tied: list[_Candidate], hints: DateHints) -> tuple[_Candidate, str]:
    """Several orders read every date: the first hint that tells them apart decides."""
    tests = (
        ("period", lambda c: -_in_period(c, hints.period)),
        ("order", _disorder),
        ("span", _span_weeks),
        ("currency", lambda c: 0 if c.order == _currency_order(hints.currency) else 1),
        ("number format", lambda c: 0 if hints.decimal == "," and c.order == "dmy" else 1),
    )
    for basis, key in tests:
        scores = [key(c) for c in tied]
        if len(set(scores)) > 1:
            low = min(scores)
            kept = [c for c, s in zip(tied, scores, strict=True) if s == low]
            if len({c.order for c in kept}) == 1:
                return kept[0], basis
            tied = kept
    preferred = [c for c in tied if c.order == "dmy"] or tied
    return preferred[0], "default"


def _in_period(c: _Candidate, period: tuple[date, date] | None) -> int:
    if period is None:
        return 0
    if c.yearless:
        return sum(any(_in(d, y, period) for y in (period[0].year, period[1].year)) for d in c.dates)
    return sum(period[0] <= d <= period[1] for d in c.dates)


def _in(d: date, year: int, period: tuple[date, date]) -> bool:
    try:
        return period[0] <= d.replace(year=year) <= period[1]
    except ValueError:  # 29 Feb in a year without it
        return False


def _disorder(c: _Candidate) -> int:
    dates = c.dates
    up = sum(a > b for a, b in pairwise(dates))
    down = sum(a < b for a, b in pairwise(dates))
    return min(up, down)


def _span_weeks(c: _Candidate) -> int:
    """How far apart the dates are, in 4-week steps (so a few days' difference does not decide)."""
    dates = c.dates
    return (max(dates) - min(dates)).days // 28 if dates else 0


def _currency_order(currency: str | None) -> str | None:
    if not currency:
        return None
    return "mdy" if currency == "USD" else "dmy"


def ambiguity_warning(choice: DateChoice) -> str | None:
    """A loud warning when only a weak hint (or nothing) decided between day-first and month-first."""
    if not choice.ambiguous or choice.basis in STRONG_BASES:
        return None
    other = "mdy" if choice.order == "dmy" else "dmy"
    why = "nothing in the file" if choice.basis == "default" else f"the {choice.basis} only"
    return (
        f"dates are ambiguous: read as {choice.label} ({why} decided it); "
        f"if they are wrong, run again with --opt date_order={other}"
    )


def resolve_year(d: date, period: tuple[date, date] | None, fallback_year: int | None) -> date | None:
    """A year-less date in the statement period (a period over New Year gives the year by month)."""
    if period is not None:
        for year in range(period[0].year, period[1].year + 1):
            if _in(d, year, period):
                return d.replace(year=year)
        year = period[0].year if d.month >= period[0].month else period[1].year
    elif fallback_year is not None:
        year = fallback_year
    else:
        return None
    try:
        return d.replace(year=year)
    except ValueError:
        return None
