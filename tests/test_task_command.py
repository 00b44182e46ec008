"""command: templates, quoting, shell mode, exit codes, stderr tails and process-group timeouts."""

from __future__ import annotations

import gzip
import os
import shlex
import shutil
import sys
import time
from pathlib import Path

import pytest

from workers import registry
from workers.registry import ItemError, TaskContext, TaskError

try:
    from conftest_tasks import run_task
except ImportError:  # tests/ became a package
    from tests.conftest_tasks import run_task
from conftest import process_alive, scaled, wait_for
from worker_rig import ended, rig_fixture  # noqa: F401  (the rig fixture)

pytestmark = pytest.mark.skipif(os.name == "nt", reason="POSIX commands and process groups")
PY = shlex.quote(sys.executable)
ODD_NAME = "Zoë's report – v2 (final) & more.txt"


@pytest.fixture
def src(tmp_path: Path) -> Path:
    root = tmp_path / "src"
    (root / "sub dir").mkdir(parents=True)
    (root / "sub dir" / ODD_NAME).write_text("hello from an odd name\n", encoding="utf-8")
    (root / "plain.txt").write_text("plain\n", encoding="utf-8")
    return root


def test_placeholders_are_one_argument_each(src: Path, tmp_path: Path) -> None:
    script = "import sys, json; print(json.dumps(sys.argv[1:]))"
    cmd = f"{PY} -c {shlex.quote(script)} {{path}} {{name}} {{stem}} {{ext}} {{rel}} {{out_dir}} literal{{{{braces}}}}"
    out = tmp_path / "out"
    result = run_task("command", src / "sub dir" / ODD_NAME, src, out, cmd=cmd)
    import json

    args = json.loads(result["stdout_tail"])
    assert args == [
        str(src / "sub dir" / ODD_NAME),
        ODD_NAME,
        "Zoë's report – v2 (final) & more",
        ".txt",
        f"sub dir/{ODD_NAME}",
        str((out / "sub dir").resolve()),
        "literal{braces}",
    ]
    assert result["exit_code"] == 0 and result["stderr_tail"] == ""
    assert result["argv"][-1] == "literal{braces}"
    assert result["duration"] >= 0


@pytest.mark.skipif(shutil.which("gzip") is None, reason="needs gzip")
def test_gzip_example_writes_under_the_output_folder(src: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    original = (src / "sub dir" / ODD_NAME).read_bytes()
    result = run_task("command", src / "sub dir" / ODD_NAME, src, out, cmd="gzip -c {path}", stdout="file")
    produced = out / "sub dir" / (ODD_NAME + ".stdout")
    assert result["stdout_path"] == f"sub dir/{ODD_NAME}.stdout"
    assert gzip.decompress(produced.read_bytes()) == original
    assert (src / "sub dir" / ODD_NAME).read_bytes() == original  # the input is untouched
    assert sorted(p.name for p in (src / "sub dir").iterdir()) == [ODD_NAME]


def test_command_runs_in_out_dir_with_environment(src: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    script = (
        "import os, pathlib; pathlib.Path('made-here.txt').write_text("
        "os.environ['BATCHDESK_REL'] + '|' + os.environ['BATCHDESK_INPUT'] + '|' + os.environ['BATCHDESK_OUT_DIR'])"
    )
    run_task("command", src / "sub dir" / ODD_NAME, src, out, cmd=f"{PY} -c {shlex.quote(script)}", stdout="discard")
    made = (out / "sub dir" / "made-here.txt").read_text()
    assert made == f"sub dir/{ODD_NAME}|{src / 'sub dir' / ODD_NAME}|{(out / 'sub dir').resolve()}"


def test_shell_mode_quotes_every_value(src: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    result = run_task(
        "command",
        src / "sub dir" / ODD_NAME,
        src,
        out,
        cmd="tr a-z A-Z < {path} > {out_dir}/{stem}.upper && echo done: {name}",
        shell="true",
    )
    assert (out / "sub dir" / "Zoë's report – v2 (final) & more.upper").read_text() == "HELLO FROM AN ODD NAME\n"
    assert result["stdout_tail"] == f"done: {ODD_NAME}\n"
    assert result["command"].startswith("tr a-z A-Z < '")


def test_without_shell_metacharacters_are_plain_arguments(src: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    result = run_task("command", src / "plain.txt", src, out, cmd="echo {name} > x && echo y | cat")
    assert result["stdout_tail"] == "plain.txt > x && echo y | cat\n"
    assert not (out / "x").exists()


def test_non_zero_exit_fails_with_the_last_stderr_line(src: Path, tmp_path: Path) -> None:
    script = "import sys; sys.stderr.write('warming up\\nsomething broke: disk full\\n\\n'); sys.exit(3)"
    with pytest.raises(ItemError) as info:
        run_task("command", src / "plain.txt", src, tmp_path / "out", cmd=f"{PY} -c {shlex.quote(script)}")
    assert str(info.value) == "exit code 3: something broke: disk full"
    assert info.value.result["exit_code"] == 3
    assert info.value.result["stderr_tail"] == "warming up\nsomething broke: disk full\n\n"
    with pytest.raises(ItemError) as info:
        run_task("command", src / "plain.txt", src, tmp_path / "out", cmd=f"{PY} -c 'raise SystemExit(2)'")
    assert str(info.value) == "exit code 2"


def test_stderr_and_stdout_tails_keep_the_last_2000_characters(src: Path, tmp_path: Path) -> None:
    script = (
        "import sys\n"
        "sys.stdout.write(''.join('%05d' % i for i in range(200000)))\n"  # 1 MB of stdout
        "sys.stderr.write('E' * 5000 + 'THE END')"
    )
    result = run_task("command", src / "plain.txt", src, tmp_path / "out", cmd=f"{PY} -c {shlex.quote(script)}")
    assert len(result["stderr_tail"]) == 2000 and result["stderr_tail"].endswith("E" * 1993 + "THE END")
    assert len(result["stdout_tail"]) == 2000 and result["stdout_tail"].endswith("199999")


def test_timeout_kills_the_whole_process_group(src: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    # the shell starts a grandchild that would outlive a plain kill of the shell
    cmd = "sleep 60 & echo $! > {out_dir}/child.pid; wait"
    started = time.monotonic()
    with pytest.raises(ItemError) as info:
        run_task("command", src / "plain.txt", src, out, cmd=cmd, shell="true", timeout="0.5")
    elapsed = time.monotonic() - started
    assert str(info.value) == "timed out after 0.5 s"
    assert elapsed < scaled(10)
    child = int((out / "child.pid").read_text())
    wait_for(lambda: not process_alive(child), 5, 0.05, "the grandchild to die with the timed-out command")
    assert info.value.result["exit_code"] < 0


def test_timeout_message_for_whole_seconds(src: Path, tmp_path: Path) -> None:
    with pytest.raises(ItemError, match=r"^timed out after 1 s$"):
        run_task("command", src / "plain.txt", src, tmp_path / "out", cmd="sleep 30", timeout="1")


def test_missing_or_bad_cmd_is_a_clear_error(src: Path, tmp_path: Path) -> None:
    spec = registry.get("command")
    with pytest.raises(TaskError, match="option 'cmd' is required"):
        spec.parse_options({})
    with pytest.raises(TaskError, match="option 'cmd' is required"):
        spec.parse_options({"cmd": "   "})
    # a runner that skipped parse_options still gets a clean item failure
    ctx = TaskContext(options={}, output_dir=tmp_path / "out", rel_path="plain.txt", source_root=src)
    with pytest.raises(ItemError, match="option 'cmd' is required"):
        spec.func(src / "plain.txt", ctx)
    # the template is checked when the job is submitted, with the run-time check's message
    with pytest.raises(TaskError, match=r"unknown placeholder \{input\} in cmd"):
        spec.parse_options({"cmd": "cat {input}"})
    with pytest.raises(TaskError, match="unknown placeholder"):
        spec.parse_options({"cmd": "cat {path!r}"})
    with pytest.raises(TaskError, match="bad cmd template"):
        spec.parse_options({"cmd": "cat 'unterminated"})
    with pytest.raises(ItemError, match=r"unknown placeholder \{input\} in cmd"):
        spec.func(src / "plain.txt", TaskContext(options={"cmd": "cat {input}"}, output_dir=tmp_path / "out",
                                                 rel_path="plain.txt", source_root=src))
    with pytest.raises(ItemError, match="command not found: no-such-program-batchdesk"):
        run_task("command", src / "plain.txt", src, tmp_path / "out", cmd="no-such-program-batchdesk {path}")
    with pytest.raises(TaskError, match="option 'timeout': '0' is too small; allowed: number > 0"):
        spec.parse_options({"cmd": "true", "timeout": "0"})


def test_command_options_default_to_no_shell_300_s_and_a_stdout_tail_and_refuse_bad_values() -> None:
    spec = registry.get("command")
    assert spec.parse_options({"cmd": "true"}) == {"cmd": "true", "shell": False, "timeout": 300.0, "stdout": "tail"}
    with pytest.raises(TaskError, match="choose one of tail, file, discard"):
        spec.parse_options({"cmd": "true", "stdout": "memory"})
    with pytest.raises(TaskError, match="not a valid float"):
        spec.parse_options({"cmd": "true", "timeout": "soon"})


@pytest.mark.slow
def test_a_real_workers_command_sees_no_batchdesk_secret(rig, src: Path, tmp_path: Path, monkeypatch) -> None:
    """Under ``serve`` a worker has the broker URL (with its password) and the store (maybe a PostgreSQL URL
    with one) in its environment; the user's command must see neither."""
    from data.models import Item

    monkeypatch.setenv("RQ_REDIS_URL", rig.broker.url)
    rig.start_worker()
    job, _ = rig.submit(src, "command", cmd=f"{PY} -c 'import os, json; print(json.dumps(dict(os.environ)))'",
                        stdout="file")
    assert wait_for(lambda: ended(job.id), 60, 0.1, "the job to end").status == "done", rig.log()
    item = Item.get((Item.job == job.id) & (Item.path == "plain.txt"))
    import json

    env = json.loads((Path(job.output_dir) / item.result["stdout_path"]).read_text())
    assert env["BATCHDESK_INPUT"] == str(src / "plain.txt") and env["BATCHDESK_REL"] == "plain.txt"
    assert sorted(k for k in env if k.startswith("BATCHDESK_")) == ["BATCHDESK_INPUT", "BATCHDESK_OUT_DIR",
                                                                    "BATCHDESK_REL"]
    assert "RQ_REDIS_URL" not in env
    assert not any(rig.broker.url in v or "rig-broker-secret" in v or str(rig.settings.store_ref) in v
                   for v in env.values()), env


@pytest.mark.parametrize("shell", ["false", "true"])
@pytest.mark.parametrize("name", ["-rf", "--help", "-n.txt"])
def test_a_value_that_would_start_an_argument_with_a_dash_gets_dot_slash(tmp_path: Path, shell: str, name: str) -> None:
    """``cp {path} {name}`` with a file named ``-rf`` must copy it, not pass ``-rf`` to cp as options."""
    root = tmp_path / "src"
    root.mkdir()
    (root / name).write_text("dashing\n")
    out = tmp_path / "out"
    result = run_task("command", root / name, root, out, cmd="cp {path} {name}", shell=shell)
    assert (out / name).read_text() == "dashing\n", result
    shown = result["command"] if shell == "true" else " ".join(result["argv"])
    assert shown.endswith((f" ./{name}", f" './{name}'")), shown


def test_only_a_value_that_starts_an_argument_gets_dot_slash(tmp_path: Path) -> None:
    root = tmp_path / "src"
    root.mkdir()
    (root / "-x.txt").write_text("x")
    script = "import sys, json; print(json.dumps(sys.argv[1:]))"
    cmd = f"{PY} -c {shlex.quote(script)} {{name}} {{rel}} {{stem}}.png --out={{name}} keep{{stem}} {{ext}}"
    expected = ["./-x.txt", "./-x.txt", "./-x.png", "--out=-x.txt", "keep-x", ".txt"]
    import json

    result = run_task("command", root / "-x.txt", root, tmp_path / "out", cmd=cmd)
    assert json.loads(result["stdout_tail"]) == expected
    result = run_task("command", root / "-x.txt", root, tmp_path / "out", cmd=cmd, shell="true")
    assert json.loads(result["stdout_tail"]) == expected
    result = run_task("command", root / "-x.txt", root, tmp_path / "out", shell="true",
                      cmd=f"{PY} -c {shlex.quote(script)} a;{PY} -c {shlex.quote(script)} {{name}}|cat")
    assert json.loads(result["stdout_tail"].splitlines()[-1]) == ["./-x.txt"]
