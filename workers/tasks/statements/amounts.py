"""Amounts as banks print them: decimal mark decided per file, signs in every style, exact Decimals."""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable
from decimal import Decimal, InvalidOperation

from workers.tasks.statements.model import StatementError

_NUMBER_CHARS = re.compile(r"[^\d.,]")
_DIGITS = re.compile(r"\d")
_NUMERIC = re.compile(
    r"^[\s(+\-\u2212]*[^\d\s]{0,3}\s*"  # signs, brackets, a currency symbol before
    r"[\d.,' \u00a0\u202f]*\d[\d.,' \u00a0\u202f]*"  # digits with their separators
    r"\s*[^\d\s]{0,3}[\s)\-]*(?:CR|DR)?$",  # a symbol, a bracket or trailing minus, CR/DR after
    re.IGNORECASE,
)

NEGATIVE_INDICATORS = frozenset(
    {"dr", "debit", "d", "s", "soll", "-", "out", "af", "debit card", "withdrawal", "lastschrift"}
)
POSITIVE_INDICATORS = frozenset({"cr", "credit", "c", "h", "haben", "+", "in", "bij", "deposit", "gutschrift"})


def looks_numeric(value: str) -> bool:
    """A cell that reads as an amount (digits, separators, a sign or a currency mark around them)."""
    return bool(_NUMERIC.match(value.strip()))


def decide_decimal(values: Iterable[str], fallback: str = ".") -> str:
    """Which of '.' and ',' is the decimal mark, judged from every amount in the file."""
    votes: Counter[str] = Counter()
    for raw in values:
        digits = _NUMBER_CHARS.sub("", raw)
        if not digits:
            continue
        has_dot, has_comma = "." in digits, "," in digits
        if has_dot and has_comma:
            votes["." if digits.rfind(".") > digits.rfind(",") else ","] += 1
        elif has_dot or has_comma:
            sep = "." if has_dot else ","
            other = "," if has_dot else "."
            tail = len(digits) - digits.rfind(sep) - 1
            if digits.count(sep) > 1:
                votes[other] += 1  # 1.234.567 / 1,234,567: a thousands separator
            elif tail != 3:
                votes[sep] += 1
    if not votes:
        return fallback
    return max(votes.items(), key=lambda kv: (kv[1], kv[0] == fallback))[0]


def _is_negative(text: str) -> bool:
    upper = text.upper()
    if upper.endswith(("DR", " D", "DEBIT")) or (text.startswith("(") and text.endswith(")")):
        return True
    stripped = re.sub(r"[^\d.,+\-]", "", text)
    return stripped.startswith("-") or stripped.endswith("-")


def parse_amount(raw: str, decimal: str) -> Decimal | None:
    """'1.234,56' / '(12.50)' / '12.50-' / '€ -3,00' / '45.00 DR' -> Decimal; '' -> None."""
    text = raw.strip().replace("\u2212", "-")
    if not text or not _DIGITS.search(text):
        return None
    digits = _NUMBER_CHARS.sub("", text)
    thousands = "," if decimal == "." else "."
    digits = digits.replace(thousands, "").replace(decimal, ".")
    if digits.count(".") > 1 or not re.fullmatch(r"\d*\.?\d*", digits) or digits in ("", "."):
        raise StatementError(f"cannot read amount {raw.strip()!r}")
    try:
        value = Decimal(digits)
    except InvalidOperation:
        raise StatementError(f"cannot read amount {raw.strip()!r}") from None
    exponent = value.as_tuple().exponent
    if isinstance(exponent, int) and exponent > -2:
        value = value.quantize(Decimal("0.01"))
    return -value if _is_negative(text) else value


def fmt(amount: Decimal) -> str:
    """An amount as plain text, exact (no exponent, no float rounding)."""
    return format(amount, "f")
