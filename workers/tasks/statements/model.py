"""What every reader (CSV, PDF) produces: transactions, stated balances, and how the file was read."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal

# What a statement's "dialect" record holds (it goes into the item's JSON result as is).
DialectValue = str | int | bool | None | list[str]


class StatementError(ValueError):
    """A statement file cannot be read; the message says why."""


@dataclass
class Transaction:
    date: date
    description: str
    amount: Decimal
    currency: str
    line: int  # CSV: line number; PDF: page * 1000 + line on the page
    category: str = ""
    balance: Decimal | None = None  # the running balance printed after it, if any


@dataclass
class Statement:
    transactions: list[Transaction]
    skipped: list[str]  # "line N: reason"
    dialect: dict[str, DialectValue]
    opening_balance: Decimal | None = None  # stated on the statement (not computed)
    closing_balance: Decimal | None = None
    currency: str = ""  # the file's currency ("" = unknown)
    currency_source: str = ""  # what told it: column, header, symbol, code, iban, option, guess...
    warnings: list[str] = field(default_factory=list)
