"""The CLI opens the UI: `batchdesk` with no subcommand and `batchdesk ui` both run it."""

from __future__ import annotations

from click.testing import CliRunner

import ui.app
from batchdesk.cli import main


def test_no_subcommand_and_ui_command_run_the_app(tmp_path, monkeypatch):
    calls = []
    monkeypatch.setattr(ui.app, "run_app", lambda settings: calls.append(settings) or 0)
    runner = CliRunner()
    for args in (["--data-dir", str(tmp_path / "d1")], ["--data-dir", str(tmp_path / "d2"), "--workers", "3", "ui"]):
        result = runner.invoke(main, args)
        assert result.exit_code == 0, result.output
    assert [s.data_dir for s in calls] == [tmp_path / "d1", tmp_path / "d2"]
    assert calls[1].workers == 3


def test_ui_exit_code_is_passed_on(tmp_path, monkeypatch):
    monkeypatch.setattr(ui.app, "run_app", lambda settings: 3)
    assert CliRunner().invoke(main, ["--data-dir", str(tmp_path), "ui"]).exit_code == 3


def test_help_still_lists_every_command():
    result = CliRunner().invoke(main, ["--help"])
    assert result.exit_code == 0
    assert "ui" in result.output and "Open the terminal UI" in result.output and "run" in result.output
    assert "service" in result.output and "Run `batchdesk serve` after login" in result.output
