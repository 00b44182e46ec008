"""The layering, enforced on every import in the source (docs/ARCHITECTURE.md, "Layers"):

    ui -> batchdesk -> data        workers -> data        batchdesk -> workers (a few leaf modules)

- data imports nothing of ours but data;
- workers imports only workers and data;
- batchdesk imports data, and of workers only the registry (what tasks exist), the protocol the desk and
  the workers share, and small process helpers; the CLI alone may import the worker process (its
  `worker` command) and the UI (its `ui` command, lazily);
- ui imports batchdesk (never the CLI), and neither data nor workers;
- no module imports itself back through others (no cycles), and importing any core module loads no
  Textual.
"""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

from conftest import REPO, scaled

PACKAGES = ("batchdesk", "data", "workers", "ui")
OURS = PACKAGES
# workers.embedders: the search engine (batchdesk.search) embeds a query with the collection's own model,
# the one the index task's workers embedded its chunks with; it is a leaf (numpy, tokenizers), no worker code.
WORKERS_FOR_THE_DESK = ("workers.registry", "workers.protocol", "workers.proctree", "workers.priority",
                        "workers.environment", "workers.throttle", "workers.embedders", "workers.zygote")


def module_name(path: Path) -> str:
    parts = list(path.relative_to(REPO).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def sources() -> dict[str, Path]:
    return {module_name(p): p for package in PACKAGES for p in sorted((REPO / package).rglob("*.py"))}


def _is_type_checking(node: ast.If) -> bool:
    return (isinstance(node.test, ast.Name) and node.test.id == "TYPE_CHECKING") or (
        isinstance(node.test, ast.Attribute) and node.test.attr == "TYPE_CHECKING")


def imports_of(path: Path, known: set[str]) -> Iterator[tuple[str, str | None]]:
    """(our module imported, enclosing function or None) for every import of ours in the file, run-time
    imports only (``if TYPE_CHECKING:`` blocks are left out). ``from a import b`` names ``a.b`` when that
    is a module of ours, else ``a``."""
    def visit(node: ast.AST, function: str | None) -> Iterator[tuple[str, str | None]]:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.If) and _is_type_checking(child):
                continue
            if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef)):
                yield from visit(child, child.name)
                continue
            if isinstance(child, ast.Import):
                for alias in child.names:
                    if alias.name.split(".")[0] in OURS:
                        yield alias.name, function
            elif (isinstance(child, ast.ImportFrom) and child.module and child.level == 0
                  and child.module.split(".")[0] in OURS):
                for alias in child.names:
                    full = f"{child.module}.{alias.name}"
                    yield (full if full in known else child.module), function
            yield from visit(child, function)

    yield from visit(ast.parse(path.read_text(encoding="utf-8"), str(path)), None)


def allowed(importer: str, imported: str, function: str | None) -> bool:
    layer, target = importer.split(".")[0], imported.split(".")[0]
    if target == layer:
        return True
    if layer == "data":
        return False
    if layer == "workers":
        return target == "data"
    if layer == "ui":
        return target == "batchdesk" and not imported.startswith("batchdesk.cli")
    # batchdesk
    if target == "data":
        return True
    if target == "workers":
        if imported.startswith(WORKERS_FOR_THE_DESK) or imported == "workers":
            return True
        return importer.startswith("batchdesk.cli") and imported == "workers.worker"
    return target == "ui" and importer == "batchdesk.cli.main" and function == "ui_command"


def test_every_import_follows_the_layering():
    modules = sources()
    known = set(modules)
    bad = [f"{importer} imports {imported}" + (f" (in {function})" if function else "")
           for importer, path in modules.items()
           for imported, function in imports_of(path, known) if not allowed(importer, imported, function)]
    assert bad == []


def test_only_the_cli_ui_command_starts_the_ui_and_it_does():
    modules = sources()
    importers = {(importer, function) for importer, path in modules.items() if not importer.startswith("ui")
                 for imported, function in imports_of(path, set(modules)) if imported.split(".")[0] == "ui"}
    assert importers == {("batchdesk.cli.main", "ui_command")}


def test_no_module_imports_itself_back():
    modules = sources()
    known = set(modules)
    graph = {m: {i for i, _ in imports_of(p, known) if i in known and i != m} for m, p in modules.items()}
    # a package's __init__ importing its own modules is the package, not a cycle
    for m in graph:
        graph[m] = {i for i in graph[m] if not (m and i.startswith(m + ".") and modules[m].name == "__init__.py")}
    cycles = []
    state: dict[str, int] = {}

    def walk(node: str, stack: list[str]) -> None:
        state[node] = 1
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                cycles.append(" -> ".join([*stack[stack.index(nxt):], nxt]))
            elif nxt not in state:
                walk(nxt, [*stack, nxt])
        state[node] = 2

    for module in sorted(graph):
        if module not in state:
            walk(module, [module])
    assert cycles == []


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
    modules = [m for m in sources() if not m.startswith("ui") and not m.endswith("__main__")]
    assert {"batchdesk.dashboard", "batchdesk.cli", "data.models", "workers.registry"} <= set(modules)
    out = subprocess.run([sys.executable, "-c", PROBE, json.dumps(modules)], cwd=REPO, capture_output=True,
                         text=True, timeout=scaled(120), check=False)
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result["failed"] == {}, f"core modules that do not import: {result['failed']}"
    assert result["loaded"] == [], f"core imports pulled in UI/Textual modules: {result['loaded']}"
