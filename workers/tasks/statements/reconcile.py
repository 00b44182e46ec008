"""Reconciliation: does opening balance + transactions = closing balance, as the statement states?

A statement states its balances as opening/closing lines ("Opening balance", "Balance brought
forward", "Neuer Kontostand" ...) or as a running balance printed after transactions. The check
walks the transactions in date order (a newest-first file is read backwards) and compares every
printed balance with the one computed from the opening balance; the outcome goes into the item's
result as ``balance_check`` (``ok``, ``mismatch`` or ``n/a``) with ``balance_difference`` (stated
closing minus computed closing) on a mismatch.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import Decimal

from workers.tasks.statements.amounts import fmt
from workers.tasks.statements.model import Transaction

_OPENING = re.compile(
    r"\b(?:opening|previous|starting|beginning|start)\s+balance\b|\bbalance\s+(?:brought\s+forward|b/?f)\b"
    r"|\bbrought\s+forward\b|\balter\s+(?:kontostand|saldo)\b|\banfangssaldo\b|\bsaldo\s+alt\b"
    r"|\bancien\s+solde\b|\bsolde\s+(?:précédent|precedent|initial)\b",
    re.IGNORECASE,
)
_CLOSING = re.compile(
    r"\b(?:closing|new|ending|final)\s+balance\b|\bbalance\s+(?:carried\s+forward|c/?f)\b"
    r"|\bcarried\s+forward\b|\bneuer\s+(?:kontostand|saldo)\b|\bendsaldo\b|\bsaldo\s+neu\b"
    r"|\bnouveau\s+solde\b|\bsolde\s+final\b",
    re.IGNORECASE,
)


def balance_kind(text: str) -> str | None:
    """'opening' or 'closing' when a line states a balance rather than a transaction."""
    if _OPENING.search(text):
        return "opening"
    if _CLOSING.search(text):
        return "closing"
    return None


def balance_mentions(text: str) -> list[tuple[int, str]]:
    """Where a line mentions an opening or a closing balance: (position, kind), in order."""
    found = [(m.start(), kind) for kind, pattern in (("opening", _OPENING), ("closing", _CLOSING))
             for m in pattern.finditer(text)]
    return sorted(found)


@dataclass(frozen=True)
class Outcome:
    check: str  # ok, mismatch, n/a
    opening: Decimal | None = None
    closing: Decimal | None = None  # as stated
    computed: Decimal | None = None
    first_break: int | None = None  # the line of the first transaction whose printed balance disagrees

    @property
    def difference(self) -> Decimal | None:
        if self.check != "mismatch" or self.closing is None or self.computed is None:
            return None
        return self.closing - self.computed

    def result(self) -> dict[str, str | int | None]:
        """The item-result fields (amounts as exact text)."""
        out: dict[str, str | int | None] = {"balance_check": self.check}
        for key, value in (("opening_balance", self.opening), ("closing_balance", self.closing),
                           ("computed_closing_balance", self.computed), ("balance_difference", self.difference)):
            if value is not None:
                out[key] = fmt(value)
        if self.first_break is not None:
            out["balance_break_line"] = self.first_break
        return out

    def warning(self) -> str | None:
        if self.check != "mismatch":
            return None
        text = (f"balance mismatch: opening {_s(self.opening)} + transactions = {_s(self.computed)}, "
                f"but the statement states {_s(self.closing)}")
        if self.difference is not None:
            text += f" (difference {fmt(self.difference)})"
        if self.first_break is not None:
            text += f"; the running balance first disagrees at line {self.first_break}"
        return text


def _s(value: Decimal | None) -> str:
    return "?" if value is None else fmt(value)


def chronological(transactions: list[Transaction]) -> list[Transaction]:
    """The transactions in the order they happened: a newest-first file is reversed (as printed,
    so same-day order is kept)."""
    if len(transactions) > 1 and transactions[0].date > transactions[-1].date:
        return transactions[::-1]
    return transactions


def reconcile(transactions: list[Transaction], opening: Decimal | None, closing: Decimal | None) -> Outcome:
    """Check stated balances against the transactions; ``n/a`` when the statement states none."""
    ordered = chronological(transactions)
    printed = [(i, tx.balance) for i, tx in enumerate(ordered) if tx.balance is not None]
    if opening is None and printed:
        index, balance = printed[0]
        opening = balance - sum((tx.amount for tx in ordered[: index + 1]), Decimal(0))
    if opening is None:
        return Outcome("n/a", closing=closing)
    running, first_break = opening, None
    for tx in ordered:
        running += tx.amount
        if first_break is None and tx.balance is not None and tx.balance != running:
            first_break = tx.line
    stated = closing if closing is not None else (printed[-1][1] if printed else None)
    if stated is None:
        return Outcome("n/a", opening=opening)
    computed = opening + sum((tx.amount for tx in ordered), Decimal(0))
    if closing is None and printed:
        last = printed[-1][0]
        computed = opening + sum((tx.amount for tx in ordered[: last + 1]), Decimal(0))
    ok = computed == stated and first_break is None
    return Outcome("ok" if ok else "mismatch", opening, stated, computed, first_break)
