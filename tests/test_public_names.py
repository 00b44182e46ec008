"""Names other software depends on, frozen: they must survive any restructuring.

- ``workers.runner.run_batch``: stored (by name) in every queue entry, which outlives an upgrade on a
  managed or external Redis;
- the plugin API in ``workers.registry``, which third-party task packages import;
- the console entry point ``batchdesk.cli:main``;
- what batchdesk.spec collects for the packaged executable (our four packages and the entry script).
"""

from __future__ import annotations

import importlib
import inspect
import tomllib

import click

from conftest import REPO


def test_the_batch_runner_keeps_its_queue_entry_name():
    runner = importlib.import_module("workers.runner")
    assert runner.RUNNER == "workers.runner.run_batch"
    assert callable(runner.run_batch) and list(inspect.signature(runner.run_batch).parameters) == ["batch_id"]


def test_the_plugin_api_keeps_its_names_and_signatures():
    registry = importlib.import_module("workers.registry")
    for name in ("ItemError", "TaskError", "Option", "TaskSpec", "TaskContext", "JobContext", "task", "load", "get"):
        assert hasattr(registry, name), name
    assert registry.ENTRY_POINT_GROUP == "batchdesk.tasks"
    assert list(inspect.signature(registry.Option).parameters)[:6] == [
        "name", "type", "default", "help", "choices", "required"]
    assert list(inspect.signature(registry.TaskSpec).parameters)[:5] == [
        "name", "func", "description", "options", "finalize"]
    assert {"options", "output_dir", "rel_path", "source_root", "logger"} <= set(
        inspect.signature(registry.TaskContext).parameters)
    assert issubclass(registry.ItemError, Exception) and issubclass(registry.TaskError, Exception)


def test_the_console_entry_point_is_batchdesk_cli_main():
    scripts = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["scripts"]
    assert scripts == {"batchdesk": "batchdesk.cli:main"}
    assert isinstance(importlib.import_module("batchdesk.cli").main, click.Group)


def test_the_packaged_executable_collects_our_packages_and_entry_script():
    spec = (REPO / "batchdesk.spec").read_text()
    assert 'for package in ("batchdesk", "workers", "data", "ui"):' in spec
    assert 'os.path.join(ROOT, "batchdesk", "__main__.py")' in spec
    assert (REPO / "batchdesk" / "__main__.py").is_file()
    for package in ("batchdesk", "workers", "data", "ui"):
        assert (REPO / package / "__init__.py").is_file(), package
