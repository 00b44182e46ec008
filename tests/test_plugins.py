"""Third-party tasks: ``module:function`` references run only when enabled; entry-point plugins load
through the ``batchdesk.tasks`` group, and a broken plugin is skipped, not fatal."""

from __future__ import annotations

import logging
import sys
import textwrap
from pathlib import Path

import pytest

from workers import registry
from workers.registry import JobContext, TaskContext, TaskError

PLUGIN = '''
import pathlib

# proof of import: a module that is never enabled must never even be imported
pathlib.Path({marker!r}).write_text("imported")


def shout(path, ctx):
    """Upper-case a text file into the output folder."""
    target = ctx.output_path(".upper")
    target.write_text(path.read_text().upper())
    return {{"chars": len(path.read_text()), "output": target.name, "greeting": ctx.options.get("greeting")}}
'''


@pytest.fixture
def isolated_registry(monkeypatch: pytest.MonkeyPatch):
    """A private copy of the registry, so plugins registered here do not leak into other tests."""
    registry.load()  # built-ins first, as a desk would
    monkeypatch.setattr(registry, "_REGISTRY", dict(registry._REGISTRY))
    return registry


@pytest.fixture
def plugin_module(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, isolated_registry):
    name = f"bd_test_plugin_{tmp_path.name.replace('-', '_')}"
    marker = tmp_path / "imported.marker"
    pkg = tmp_path / "site"
    pkg.mkdir()
    (pkg / f"{name}.py").write_text(PLUGIN.format(marker=str(marker)), encoding="utf-8")
    monkeypatch.syspath_prepend(str(pkg))
    yield name, marker
    sys.modules.pop(name, None)


def test_module_function_task_is_refused_unless_enabled(plugin_module, tmp_path: Path) -> None:
    name, marker = plugin_module
    ref = f"{name}:shout"
    with pytest.raises(TaskError, match=r"is not enabled: add it to 'plugins' in the config file"):
        registry.get(ref)
    with pytest.raises(TaskError, match="is not enabled"):
        registry.get(ref, enabled_refs=("json:dumps",))  # enabling something else does not count
    assert not marker.exists() and name not in sys.modules  # refused without running any of its code


def test_module_function_task_runs_when_enabled(plugin_module, tmp_path: Path) -> None:
    name, marker = plugin_module
    ref = f"{name}:shout"
    spec = registry.get(ref, enabled_refs=(ref,))
    assert marker.exists()
    assert spec.name == ref and spec.description == "Upper-case a text file into the output folder."
    src = tmp_path / "src"
    (src / "deep").mkdir(parents=True)
    (src / "deep" / "hi.txt").write_text("hello plugin", encoding="utf-8")
    opts = spec.parse_options({})
    assert opts == {}  # a bare function has no options schema...
    with pytest.raises(TaskError, match="has no option"):
        spec.parse_options({"greeting": "x"})  # ...so unknown options are refused as for built-ins
    out = tmp_path / "out"
    ctx = TaskContext(options=opts, output_dir=out, rel_path="deep/hi.txt", source_root=src)
    result = spec.func(src / "deep" / "hi.txt", ctx)
    assert result == {"chars": 12, "output": "hi.txt.upper", "greeting": None}
    assert (out / "deep" / "hi.txt.upper").read_text() == "HELLO PLUGIN"


def test_enabled_reference_to_a_taskspec_keeps_its_options(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                          isolated_registry) -> None:
    name = f"bd_test_spec_{tmp_path.name.replace('-', '_')}"
    (tmp_path / f"{name}.py").write_text(
        textwrap.dedent(
            """
            from workers.registry import Option, TaskSpec

            def _count(path, ctx):
                return {"lines": len(path.read_text().splitlines()) * ctx.options["factor"]}

            def _report(job):
                (job.output_dir / "count.txt").write_text(str(sum(r["lines"] for _p, _s, r, _e in job.results())))

            SPEC = TaskSpec(name="line-count", func=_count, options=(Option("factor", int, 1, "multiplier"),),
                            finalize=_report)
            """
        ),
        encoding="utf-8",
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    ref = f"{name}:SPEC"
    spec = registry.get(ref, enabled_refs=(ref,))
    opts = spec.parse_options({"factor": "3"})
    (tmp_path / "a.txt").write_text("1\n2\n", encoding="utf-8")
    ctx = TaskContext(options=opts, output_dir=tmp_path / "o", rel_path="a.txt", source_root=tmp_path)
    result = spec.func(tmp_path / "a.txt", ctx)
    assert result == {"lines": 6}
    (tmp_path / "o").mkdir()
    spec.finalize(JobContext(1, opts, tmp_path / "o", tmp_path, lambda: iter([("a.txt", "done", result, None)])))
    assert (tmp_path / "o" / "count.txt").read_text() == "6"
    sys.modules.pop(name, None)


def test_plugin_options_with_and_without_constraints(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                    isolated_registry) -> None:
    """Options declared as before keep their behaviour; a plugin can declare bounds and checks too."""
    name = f"bd_test_opts_{tmp_path.name.replace('-', '_')}"
    (tmp_path / f"{name}.py").write_text(
        textwrap.dedent(
            """
            from workers.registry import Option, task

            def _below_limit(value, ctx):
                if value >= ctx.options["limit"]:
                    raise ValueError(f"must be below limit ({ctx.options['limit']})")

            @task("plain-opts", options=(Option("factor", int, 1, "multiplier"), Option("label", str, None, "a label"),
                                         Option("loud", bool, False, "shout")))
            def plain(path, ctx):
                return dict(ctx.options)

            @task("strict-opts", options=(Option("limit", int, 10, "upper limit", min=1),
                                          Option("start", int, 0, "first value", check=_below_limit,
                                                 allowed="below limit")))
            def strict(path, ctx):
                return dict(ctx.options)
            """
        ),
        encoding="utf-8",
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    __import__(name)
    plain = registry.get("plain-opts")
    assert plain.parse_options({}) == {"factor": 1, "label": None, "loud": False}
    assert plain.parse_options({"factor": "-7", "label": "", "loud": "ON"}) == {"factor": -7, "label": "", "loud": True}
    with pytest.raises(TaskError, match="option 'factor': 'x' is not a valid int"):
        plain.parse_options({"factor": "x"})
    with pytest.raises(TaskError, match="option 'loud': 'maybe' is not a valid bool"):
        plain.parse_options({"loud": "maybe"})  # booleans are true/false, yes/no, on/off, 1/0 for every task
    strict = registry.get("strict-opts")
    assert strict.parse_options({"limit": "5", "start": "4"}) == {"limit": 5, "start": 4}
    assert [o.describe() for o in strict.options] == ["integer >= 1", "integer, below limit"]
    with pytest.raises(TaskError, match=r"^option 'start': '5' is not allowed: must be below limit \(5\)$"):
        strict.parse_options({"limit": "5", "start": "5"})
    with pytest.raises(TaskError, match=r"^option 'limit': '0' is too small; allowed: integer >= 1$"):
        strict.parse_options({"limit": "0"})
    sys.modules.pop(name, None)


def test_enabled_but_broken_references_are_clear_errors(isolated_registry) -> None:
    with pytest.raises(TaskError, match="cannot load task 'bd_no_such_module_xyz:run'"):
        registry.get("bd_no_such_module_xyz:run", enabled_refs=("bd_no_such_module_xyz:run",))
    with pytest.raises(TaskError, match=r"must look like 'package\.module:function'"):
        registry.load(("just_a_module:",))
    with pytest.raises(TaskError, match="cannot load task 'json:no_such_function'"):
        registry.get("json:no_such_function", enabled_refs=("json:no_such_function",))
    with pytest.raises(TaskError, match="is not callable"):
        registry.get("json:__version__", enabled_refs=("json:__version__",))


def test_entry_point_plugins_register_and_broken_ones_are_skipped(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, isolated_registry, caplog: pytest.LogCaptureFixture
) -> None:
    site = tmp_path / "site"
    site.mkdir()
    (site / "bd_ep_plugin.py").write_text(
        textwrap.dedent(
            """
            from workers.registry import Option, task

            @task("reverse-name", description="the file name backwards", options=(Option("upper", bool, False),))
            def reverse_name(path, ctx):
                name = path.name[::-1]
                return {"reversed": name.upper() if ctx.options["upper"] else name}
            """
        ),
        encoding="utf-8",
    )
    dist = site / "bd_ep_plugin-1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: bd-ep-plugin\nVersion: 1.0\n", encoding="utf-8")
    (dist / "entry_points.txt").write_text(
        "[batchdesk.tasks]\nreverse-name = bd_ep_plugin:reverse_name\nbroken = bd_ep_missing_module:nothing\n",
        encoding="utf-8",
    )
    monkeypatch.syspath_prepend(str(site))
    monkeypatch.setattr(registry, "_loaded", False)  # as in a fresh worker process
    caplog.set_level(logging.WARNING, logger="workers.registry")
    tasks = registry.load()
    assert "reverse-name" in tasks and "checksum" in tasks
    assert any("task plugin broken failed to load" in r.getMessage() for r in caplog.records)
    spec = registry.get("reverse-name")
    (tmp_path / "abc.txt").write_text("x", encoding="utf-8")
    opts = spec.parse_options({"upper": "yes"})
    ctx = TaskContext(options=opts, output_dir=tmp_path / "o", rel_path="abc.txt", source_root=tmp_path)
    result = spec.func(tmp_path / "abc.txt", ctx)
    assert result == {"reversed": "TXT.CBA"}
    sys.modules.pop("bd_ep_plugin", None)


def test_a_plugin_cannot_take_a_built_in_tasks_name(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, isolated_registry, caplog: pytest.LogCaptureFixture
) -> None:
    """Built-in names are reserved: a command finds a built-in task by importing its module alone, so a
    plugin of the same name would run in the workers but not be the one its job was checked against."""
    site = tmp_path / "site"
    site.mkdir()
    (site / "bd_shadow_plugin.py").write_text(
        "from workers.registry import task\n\n@task('checksum')\ndef fake(path, ctx):\n    return {}\n",
        encoding="utf-8",
    )
    monkeypatch.syspath_prepend(str(site))
    caplog.set_level(logging.WARNING, logger="workers.registry")
    __import__("bd_shadow_plugin")
    sys.modules.pop("bd_shadow_plugin", None)
    assert registry.get("checksum").func.__module__ == "workers.tasks.checksum"
    assert any("task checksum from bd_shadow_plugin ignored" in r.getMessage() for r in caplog.records)


def test_builtin_tasks_are_registered() -> None:
    tasks = registry.load()
    assert {"checksum", "extract-text", "statements", "command"} <= set(tasks)
    for name in ("checksum", "extract-text", "statements", "command"):
        spec = tasks[name]
        assert spec.description
        assert all(opt.help for opt in spec.options), name
    assert tasks["checksum"].finalize is not None and tasks["statements"].finalize is not None


def test_an_item_error_may_carry_a_result_that_the_failed_item_keeps(settings, tmp_path: Path, monkeypatch,
                                                                      isolated_registry) -> None:
    """A task fails an item with ``ItemError(reason, result=...)`` (what it got done, e.g. a command's exit code
    and stderr): the runner records the item as failed with that reason and keeps the result."""
    from batchdesk.jobs.submit import JobRequest, submit_folder
    from data import queries
    from data.models import Item
    from data.store import close_store, open_store
    from workers import runner

    @registry.task("half-done", description="test: fails every item with a partial result")
    def half_done(path: Path, ctx: TaskContext) -> dict:
        raise registry.ItemError(f"{path.name} is half done", result={"read": path.stat().st_size})

    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "a.txt").write_text("four", encoding="utf-8")
    settings.data_dir.mkdir(parents=True)
    open_store(settings.store_path)
    monkeypatch.setattr(runner.CONFIG, "store", settings.store_path)
    try:
        job, _ = submit_folder(settings, JobRequest(tmp_path / "in", "half-done", {}))
        runner.run_batch(queries.cut_batch(job, 100, 1 << 30).id)
        item = Item.get(Item.job == job.id)
        assert (item.status, item.error, item.result) == ("failed", "a.txt is half done", {"read": 4})
    finally:
        close_store()
    assert str(registry.ItemError("no result")) == "no result" and registry.ItemError("no result").result is None
