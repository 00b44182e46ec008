"""Small modules, short functions: in batchdesk/, workers/, ui/ and data/ no source file is over 500 lines
and no function (or method) over 60, counted from its ``def`` line to its last line."""

from __future__ import annotations

import ast

from conftest import REPO

PACKAGES = ("batchdesk", "workers", "ui", "data")
MAX_FILE_LINES = 500
MAX_FUNCTION_LINES = 60


def sources():
    for package in PACKAGES:
        yield from sorted((REPO / package).rglob("*.py"))


def test_no_source_file_is_over_500_lines():
    long = {str(p.relative_to(REPO)): n for p in sources()
            if (n := len(p.read_text(encoding="utf-8").splitlines())) > MAX_FILE_LINES}
    assert long == {}


def test_no_function_is_over_60_lines():
    long = {}
    for path in sources():
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                length = (node.end_lineno or node.lineno) - node.lineno + 1
                if length > MAX_FUNCTION_LINES:
                    long[f"{path.relative_to(REPO)}:{node.lineno} {node.name}"] = length
    assert long == {}
