"""Task options are validated once, when a job or watch is submitted: booleans, number bounds, choices
and each built-in task's own rules (command template, chunk overlap, codec, rules file), every error
one line naming the option, the bad value and what is allowed."""

from __future__ import annotations

import pytest

from workers import registry
from workers.registry import CheckContext, Option, TaskError, TaskSpec


def _spec(*options: Option) -> TaskSpec:
    return TaskSpec(name="t", func=lambda path, ctx: {}, options=options)


# -- booleans ----------------------------------------------------------------------------------------
@pytest.mark.parametrize("raw", ["true", "TRUE", "yes", "Yes", "on", "ON", "1", " true ", True, 1])
def test_bool_option_takes_true_yes_on_and_1_in_any_case(raw):
    assert Option("flag", bool, False).parse(raw) is True


@pytest.mark.parametrize("raw", ["false", "False", "no", "NO", "off", "Off", "0", False, 0])
def test_bool_option_takes_false_no_off_and_0_in_any_case(raw):
    assert Option("flag", bool, True).parse(raw) is False


@pytest.mark.parametrize("raw", ["maybe", "perhaps", "", "2", "y", "n", "t", 2, 0.5])
def test_anything_else_is_not_a_boolean(raw):
    with pytest.raises(TaskError) as exc:
        Option("flag", bool, False).parse(raw)
    message = str(exc.value)
    assert message == f"option 'flag': {raw!r} is not a valid bool; allowed: true/false, yes/no, on/off, 1/0"


def test_a_left_out_boolean_takes_its_default():
    assert _spec(Option("flag", bool, True)).parse_options({}) == {"flag": True}


# -- numbers ---------------------------------------------------------------------------------------
def test_bounds_are_checked_and_described():
    size = Option("size", int, 1000, "chunk size", min=50)
    share = Option("share", float, 0.5, "a fraction", min=0, max=1)
    wait = Option("wait", float, 300.0, "seconds", above=0)
    assert (size.describe(), share.describe(), wait.describe()) == ("integer >= 50", "number from 0 to 1", "number > 0")
    assert size.parse("50") == 50 and share.parse("1") == 1.0 and wait.parse("0.01") == 0.01
    cases = [(size, "10", "option 'size': '10' is too small; allowed: integer >= 50"),
             (share, 2, "option 'share': 2 is too large; allowed: number from 0 to 1"),
             (share, "-0.1", "option 'share': '-0.1' is too small; allowed: number from 0 to 1"),
             (wait, "-5", "option 'wait': '-5' is too small; allowed: number > 0"),
             (wait, "0", "option 'wait': '0' is too small; allowed: number > 0"),
             (wait, "nan", "option 'wait': 'nan' is not a number; allowed: number > 0"),
             (size, "lots", "option 'size': 'lots' is not a valid int; allowed: integer >= 50")]
    for option, raw, message in cases:
        with pytest.raises(TaskError) as exc:
            option.parse(raw)
        assert str(exc.value) == message


def test_choice_option_describes_its_choices_and_refuses_others():
    option = Option("mode", str, "a", "how", choices=("a", "b"))
    assert option.describe() == "one of a, b"
    with pytest.raises(TaskError, match=r"^option 'mode': 'c' is not allowed; choose one of a, b$"):
        option.parse("c")


# -- checks and cross-option rules -----------------------------------------------------------------
def _at_most_half_of_size(value, ctx: CheckContext) -> None:
    if value > ctx.options["size"] // 2:
        raise ValueError(f"at most size/2 ({ctx.options['size'] // 2})")


def test_a_check_sees_the_other_options_and_the_source_folder(tmp_path):
    seen = []
    spec = _spec(Option("size", int, 100, "size", min=10),
                 Option("overlap", int, 10, "overlap", min=0, check=_at_most_half_of_size, allowed="at most size/2"),
                 Option("where", str, "", "a name", check=lambda v, ctx: seen.append(ctx.source_root)))
    assert spec.options[1].describe() == "integer >= 0, at most size/2"
    assert spec.parse_options({"size": "40", "overlap": "20"}, source_root=tmp_path) == {
        "size": 40, "overlap": 20, "where": ""}
    assert seen == [tmp_path]
    with pytest.raises(TaskError) as exc:
        spec.parse_options({"overlap": "60"})
    assert str(exc.value) == "option 'overlap': '60' is not allowed: at most size/2 (50)"
    spec.parse_options({})
    assert seen[-1] is None  # no folder known (e.g. a unit test)


def test_a_check_raising_task_error_keeps_its_message():
    def no_spaces(value, ctx):
        if " " in value:
            raise TaskError("no spaces please")

    with pytest.raises(TaskError, match=r"^option 'name': 'a b' is not allowed: no spaces please$"):
        _spec(Option("name", str, "", "a name", check=no_spaces)).parse_options({"name": "a b"})


def test_an_option_without_constraints_behaves_as_before():
    spec = _spec(Option("factor", int, 1, "multiplier"), Option("label", str, None, "text"),
                 Option("rate", float, 0.5))
    assert spec.parse_options({"factor": "-3", "rate": "1e9"}) == {"factor": -3, "label": None, "rate": 1e9}
    assert spec.options[0].describe() == "integer" and spec.options[1].describe() == "text"
    with pytest.raises(TaskError, match="has no option"):
        spec.parse_options({"colour": "red"})
    # positional fields keep their order (plugins build options positionally)
    assert Option("x", int, 3, "help", ("1", "2"), True) == Option(
        name="x", type=int, default=3, help="help", choices=("1", "2"), required=True)


def test_parsing_twice_gives_the_same_options():
    """Stored (already parsed) options are parsed again when a watch starts a job: same result."""
    for name, raw in (("extract-text", {"chunk_size": "2000", "chunk_overlap": "100"}),
                      ("command", {"cmd": "gzip -k {path}", "shell": "no", "timeout": "5"}),
                      ("checksum", {"duplicates": "off"}), ("statements", {"currency": "eur"})):
        spec = registry.get(name)
        once = spec.parse_options(raw)
        assert spec.parse_options(once) == once, name


# -- the built-in tasks ------------------------------------------------------------------------------
BAD = [
    ("checksum", {"duplicates": "maybe"}, "option 'duplicates': 'maybe' is not a valid bool"),
    ("command", {"cmd": "true", "shell": "perhaps"}, "option 'shell': 'perhaps' is not a valid bool"),
    ("extract-text", {"chunk_size": "10"}, "option 'chunk_size': '10' is too small; allowed: integer >= 50"),
    ("extract-text", {"chunk_overlap": "900"},
     "option 'chunk_overlap': '900' is not allowed: at most chunk_size/2 (500)"),
    ("extract-text", {"chunk_size": "100", "chunk_overlap": "51"},
     "option 'chunk_overlap': '51' is not allowed: at most chunk_size/2 (50)"),
    ("extract-text", {"chunk_overlap": "-1"}, "option 'chunk_overlap': '-1' is too small"),
    ("extract-text", {"max_mb": "0"}, "option 'max_mb': '0' is too small; allowed: integer from 1 to 4096"),
    ("extract-text", {"max_mb": "5000"}, "option 'max_mb': '5000' is too large"),
    ("extract-text", {"encoding": "utf-9"}, "option 'encoding': 'utf-9' is not allowed: unknown encoding"),
    ("extract-text", {"encoding": "base64"}, "option 'encoding': 'base64' is not allowed: not a text encoding"),
    ("statements", {"encoding": "klingon"}, "option 'encoding': 'klingon' is not allowed: unknown encoding"),
    ("command", {"cmd": "echo hi", "timeout": "-5"}, "option 'timeout': '-5' is too small; allowed: number > 0"),
    ("command", {"cmd": "echo hi", "timeout": "0"}, "option 'timeout': '0' is too small"),
    ("command", {"cmd": "echo {bogus}"},
     "option 'cmd': 'echo {bogus}' is not allowed: unknown placeholder {bogus} in cmd; use {path} {name} {stem}"),
    ("command", {"cmd": "cat {path!r}"}, "unknown placeholder {path} in cmd"),
    ("command", {"cmd": "cat 'unterminated"}, "option 'cmd': \"cat 'unterminated\" is not allowed: bad cmd template"),
    ("command", {"cmd": "echo {"}, "option 'cmd': 'echo {' is not allowed: bad cmd template"),
    ("statements", {"currency": "euro"}, "option 'currency': 'euro' is not allowed: use a 3-letter currency code"),
    ("statements", {"date_order": "dym"},
     "option 'date_order': 'dym' is not allowed; choose one of auto, ymd, dmy, mdy"),
    ("statements", {"rules": "/no/such/rules.toml"},
     "option 'rules': '/no/such/rules.toml' is not allowed: rules file not found"),
]


@pytest.mark.parametrize("task, raw, message", BAD, ids=[f"{t}-{'-'.join(r)}" for t, r, _ in BAD])
def test_bad_values_of_the_builtin_tasks(task, raw, message):
    with pytest.raises(TaskError) as exc:
        registry.get(task).parse_options(raw)
    assert message in str(exc.value) and "\n" not in str(exc.value)


def test_good_values_of_the_builtin_tasks(tmp_path):
    extract = registry.get("extract-text")
    options = extract.parse_options({"chunk_size": "50", "chunk_overlap": "25", "encoding": "CP1252"})
    assert options["chunk_overlap"] == 25
    command = registry.get("command")
    assert command.parse_options({"cmd": "cat 'unterminated", "shell": "yes"})["shell"] is True  # no split by a shell
    assert command.parse_options({"cmd": "printf '{{}}' {name}", "timeout": "0.5"})["timeout"] == 0.5
    assert registry.get("statements").parse_options({"currency": "eur", "encoding": "latin-1"})["currency"] == "eur"


def test_the_rules_file_must_exist_and_parse(tmp_path):
    statements = registry.get("statements")
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "my rules.toml").write_text('[categories]\nFood = ["aldi"]\n', encoding="utf-8")
    # relative: looked for in the current folder, then the job's source folder (as the task does)
    options = statements.parse_options({"rules": "my rules.toml"}, source_root=tmp_path / "src")
    assert options["rules"] == "my rules.toml"
    with pytest.raises(TaskError, match=r"rules file not found: my rules\.toml"):
        statements.parse_options({"rules": "my rules.toml"})
    bad = tmp_path / "bad.toml"
    bad.write_text("[categories\n", encoding="utf-8")
    not_toml = r"option 'rules': '.*bad\.toml' is not allowed: rules file .* is not valid TOML"
    with pytest.raises(TaskError, match=not_toml):
        statements.parse_options({"rules": str(bad)})
    bad.write_text('[categories]\nX = ["re:(unclosed"]\n', encoding="utf-8")
    with pytest.raises(TaskError, match="bad regex"):
        statements.parse_options({"rules": str(bad)})


def test_every_builtin_option_describes_what_it_allows():
    described = {(task, o.name): o.describe() for task, spec in registry.load().items() for o in spec.options}
    assert described[("extract-text", "chunk_size")] == "integer >= 50"
    assert described[("extract-text", "chunk_overlap")] == "integer >= 0, at most chunk_size/2"
    assert described[("command", "timeout")] == "number > 0"
    assert described[("command", "stdout")] == "one of tail, file, discard"
    assert described[("statements", "delimiter")] == 'one of auto, ",", ";", tab, "|"'
    assert described[("checksum", "duplicates")] == "true/false, yes/no, on/off, 1/0"
    assert "placeholders" in described[("command", "cmd")] and "required" in described[("command", "cmd")]
    assert "codec" in described[("statements", "encoding")]
    assert all(described.values())


def test_submitting_a_folder_checks_a_relative_rules_file_against_it(settings, tmp_path, monkeypatch):
    """As the task looks for it: the current folder, then the job's folder (real store, no desk)."""
    from batchdesk.jobs.submit import JobRequest, SubmitError, submit_folder
    from data.models import Job
    from data.store import close_store, open_store

    folder = tmp_path / "statements"
    folder.mkdir()
    (folder / "a.csv").write_text("Date,Description,Amount\n2024-03-01,X,-1.00\n", encoding="utf-8")
    (folder / "my rules.toml").write_text('[categories]\nFood = ["aldi"]\n', encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    settings.data_dir.mkdir(parents=True)
    open_store(settings.store_path)
    try:
        with pytest.raises(SubmitError, match=r"option 'rules': 'other\.toml' is not allowed: rules file not found"):
            submit_folder(settings, JobRequest(folder=folder, task="statements", options={"rules": "other.toml"}))
        assert Job.select().count() == 0
        job, _scan = submit_folder(settings, JobRequest(folder=folder, task="statements",
                                                        options={"rules": "my rules.toml"}))
        assert job.options["rules"] == "my rules.toml" and job.items_total == 2
    finally:
        close_store()


def test_the_tasks_command_shows_what_each_option_allows(settings):
    import json

    from click.testing import CliRunner

    from batchdesk.cli import main

    text = CliRunner().invoke(main, ["--data-dir", str(settings.data_dir), "tasks"]).output
    assert ("--opt chunk_size=<int>  characters per chunk in <name>.chunks.jsonl "
            "(default: 1000; allowed: integer >= 50)") in text
    assert "--opt timeout=<float>" in text and "allowed: number > 0" in text
    data = json.loads(CliRunner().invoke(main, ["--data-dir", str(settings.data_dir), "tasks", "--json"]).output)
    options = {o["name"]: o for t in data if t["name"] == "extract-text" for o in t["options"]}
    assert options["chunk_overlap"]["allowed"] == "integer >= 0, at most chunk_size/2"
