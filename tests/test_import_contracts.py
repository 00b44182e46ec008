"""Dependency direction: ui -> batchdesk -> data. Nothing in batchdesk/, data/ or workers/ imports the
UI or Textual; only the CLI's ``ui`` command may import ``ui`` (lazily, inside the function)."""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

from conftest import REPO

CORE_PACKAGES = ("batchdesk", "data", "workers")
FORBIDDEN = ("textual", "ui")
# (file, function) where a lazy import of the UI is allowed.
ALLOWED_LAZY = {("batchdesk/cli.py", "ui_command")}


def core_modules() -> list[str]:
    modules = []
    for package in CORE_PACKAGES:
        for path in sorted((REPO / package).rglob("*.py")):
            rel = path.relative_to(REPO).with_suffix("")
            parts = list(rel.parts)
            if parts[-1] == "__init__":
                parts = parts[:-1]
            if parts[-1] == "__main__":
                continue  # running it would start the CLI
            modules.append(".".join(parts))
    return modules


PROBE = r"""
import importlib, json, sys
modules = json.loads(sys.argv[1])
failed = {}
for name in modules:
    try:
        importlib.import_module(name)
    except Exception as exc:
        failed[name] = f"{type(exc).__name__}: {exc}"
loaded = sorted(m for m in sys.modules if m in ("textual", "ui") or m.startswith(("textual.", "ui.")))
print(json.dumps({"failed": failed, "loaded": loaded}))
"""


def test_importing_every_core_module_loads_no_ui_and_no_textual():
    modules = core_modules()
    assert {"batchdesk.views", "batchdesk.cli", "data.models", "workers.registry"} <= set(modules)
    out = subprocess.run([sys.executable, "-c", PROBE, json.dumps(modules)], cwd=REPO, capture_output=True,
                         text=True, timeout=120, check=False)
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result["failed"] == {}, f"core modules that do not import: {result['failed']}"
    assert result["loaded"] == [], f"core imports pulled in UI/Textual modules: {result['loaded']}"


def _imports(tree: ast.AST):
    """(module name, enclosing function or None) for every import in ``tree``; ``from a import b``
    yields ``a.b`` too, so ``from workers import registry`` counts as ``workers.registry``."""
    def visit(node: ast.AST, function: str | None):
        for child in ast.iter_child_nodes(node):
            if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef)):
                yield from visit(child, child.name)
                continue
            if isinstance(child, ast.Import):
                for alias in child.names:
                    yield alias.name, function
            elif isinstance(child, ast.ImportFrom) and child.module and child.level == 0:
                yield child.module, function
                for alias in child.names:
                    yield f"{child.module}.{alias.name}", function
            yield from visit(child, function)

    yield from visit(tree, None)


def test_no_core_source_imports_ui_or_textual_except_the_cli_ui_command():
    offenders = []
    lazy = []
    for package in CORE_PACKAGES:
        for path in sorted((REPO / package).rglob("*.py")):
            rel = path.relative_to(REPO).as_posix()
            for module, function in _imports(ast.parse(path.read_text(encoding="utf-8"), rel)):
                if module.split(".")[0] not in FORBIDDEN:
                    continue
                if (rel, function) in ALLOWED_LAZY:
                    lazy.append((rel, function, module))
                else:
                    offenders.append(f"{rel}: import {module}" + (f" (in {function})" if function else ""))
    assert offenders == []
    assert ("batchdesk/cli.py", "ui_command", "ui.app") in lazy, "the CLI's ui command imports the UI lazily"


def test_ui_does_not_reach_into_workers_internals():
    """The UI talks to the core (batchdesk) and the store; it may read the task registry, nothing else
    of the worker side."""
    bad = []
    for path in sorted((REPO / "ui").rglob("*.py")):
        for module, _ in _imports(ast.parse(path.read_text(encoding="utf-8"))):
            if module.startswith("workers.") and not module.startswith("workers.registry"):
                bad.append(f"{path.relative_to(REPO)}: {module}")
    assert bad == []


def test_repo_layout_has_the_ui_package():
    assert (REPO / "ui" / "app.py").is_file() and (REPO / "ui" / "app.tcss").is_file()
    assert Path(REPO / "batchdesk" / "views.py").is_file()
