"""Data formats: JSON and JSON Lines (one ``key.path: value`` line per value), CSV (a line per row)."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from workers.registry import ItemError
from workers.tasks._common import check_is_text, decode_text, guess_delimiter
from workers.tasks.extract_text.chunks import tidy
from workers.tasks.extract_text.extracted import Extracted


def _json_lines(value: Any, prefix: str = "") -> Iterator[str]:
    if isinstance(value, dict):
        for key, item in value.items():
            yield from _json_lines(item, f"{prefix}.{key}" if prefix else str(key))
    elif isinstance(value, list):
        for n, item in enumerate(value):
            yield from _json_lines(item, f"{prefix}[{n}]")
    elif value is not None:
        text = value if isinstance(value, str) else json.dumps(value)
        yield f"{prefix}: {text}" if prefix else text


def extract_json(path: Path, data: bytes, encoding: str) -> Extracted:
    """Every value with its path; the top level's kind, and a top-level ``title``."""
    text, used = decode_text(data, encoding)
    check_is_text(text)
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ItemError(f"not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}") from None
    except RecursionError:
        raise ItemError("not valid JSON: nested too deeply") from None
    meta: dict[str, Any] = {"top_level": type(value).__name__.replace("dict", "object").replace("list", "array")}
    if isinstance(value, dict) and isinstance(value.get("title"), str):
        meta["title"] = value["title"]
    return Extracted(tidy("\n".join(_json_lines(value))), encoding=used, meta=meta)


def extract_jsonl(path: Path, data: bytes, encoding: str) -> Extracted:
    """Every value of every record, with the record's number in its path; how many records."""
    text, used = decode_text(data, encoding)
    check_is_text(text)
    out: list[str] = []
    records = 0
    for lineno, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            value = json.loads(line)
        except (json.JSONDecodeError, RecursionError) as exc:
            raise ItemError(f"not valid JSON Lines: line {lineno}: {getattr(exc, 'msg', exc)}") from None
        out.extend(_json_lines(value, f"[{records}]"))
        records += 1
    return Extracted(tidy("\n".join(out)), encoding=used, meta={"records": records})


def extract_csv(path: Path, data: bytes, encoding: str) -> Extracted:
    """A line per non-empty row, cells joined by `` | ``; rows, columns and the delimiter found."""
    text, used = decode_text(data, encoding)
    check_is_text(text)
    delimiter = guess_delimiter(text) or ("\t" if path.suffix.lower() == ".tsv" else ",")
    rows_out: list[str] = []
    columns = rows = 0
    try:
        for row in csv.reader(io.StringIO(text), delimiter=delimiter, skipinitialspace=True):
            if not any(cell.strip() for cell in row):
                continue
            columns = max(columns, len(row))
            rows += 1
            rows_out.append(" | ".join(" ".join(cell.split()) for cell in row))
    except csv.Error as exc:
        raise ItemError(f"not valid CSV: {exc}") from None
    meta = {"rows": rows, "columns": columns, "delimiter": delimiter}
    return Extracted(tidy("\n".join(rows_out)), encoding=used, meta=meta)
