"""The packaged executable indexes a mixed folder and finds a document by a paraphrased question, with
no network at all (a network namespace of its own where the machine allows it) and no Python behind it.
Runs with the other packaged-executable tests (CI, or BATCHDESK_TEST_PACKAGED=1; see test_packaged.py)."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from index_corpus import write_corpus
from test_index_e2e import offline_prefix
from test_packaged import ENABLED, exe, frozen_env  # noqa: F401  (exe: the session's executable)

pytestmark = [
    pytest.mark.slow,
    pytest.mark.timeout(1200),
    pytest.mark.skipif(not ENABLED, reason="packaged-executable tests build with PyInstaller: set "
                                           "BATCHDESK_TEST_PACKAGED=1 to run them (CI runs them)"),
]


def offline(executable: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**frozen_env(), "BATCHDESK_LINGER": "0"}  # the background desk stops with its job
    return subprocess.run([*offline_prefix(), str(executable), *args], capture_output=True, text=True,
                          env=env, timeout=600, cwd=executable.parent, check=False)


def test_the_executable_indexes_and_searches_offline(request, tmp_path):
    executable = request.getfixturevalue("exe")
    folder, data = tmp_path / "docs", tmp_path / "data"
    write_corpus(folder, fillers=20)
    run = offline(executable, "--data-dir", str(data), "--workers", "2", "run", str(folder), "--task", "index",
                  "--json")
    assert run.returncode == 0, run.stderr[-3000:]
    assert json.loads(run.stdout)["done"] == 52
    found = offline(executable, "--data-dir", str(data), "search", "fish keep dying in my new tank", "--json")
    assert found.returncode == 0, found.stderr[-3000:]
    hits = json.loads(found.stdout)
    assert hits[0]["path"] == str((folder / "pets/aquarium-cycle.html").resolve()) and hits[0]["lang"] == "en"
