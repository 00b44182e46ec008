"""Do only what changed: a new job of a folder leaves out the files that an earlier job already did.

Every folder job keeps its items (path, size, mtime, how each ended). A new job of the same folder, task and
task options, into the same output folder, takes only the files that are new, changed, or that did not end
done: a file whose size and modification time equal those of a done item of an earlier job that ended done is
assumed unchanged and left out, as make and rsync's quick check assume. No file is read to decide: hashing
every file would cost about as much as the cheap tasks themselves, and the store keeps no content hash for
most tasks (a change that keeps both size and mtime goes unnoticed: `--all` redoes everything).

The new job writes into the earlier jobs' output folder (unless given another, which then must be theirs to
count), so every file's outputs stay together; one whose earlier output folder is gone redoes everything.
A task's end-of-job report still covers the whole folder: its results are the new job's items plus the done
items of the earlier jobs it left unchanged files to (data.queries.iter_folder_results), so checksum's
duplicates.csv finds a new file equal to an old one. A task that must see every file again each time says so
with ``TaskSpec.skip_unchanged=False`` (workers/registry.py).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from data.models import Job, db
from data.states import ItemState, JobState, SourceKind
from workers.registry import TaskSpec

File = tuple[str, int, float]  # (relative path, size, mtime), as the scan lists them
# Where a job's batch_config records what it left out: {"files": N, "bytes": B, "jobs": [earlier job ids]}.
UNCHANGED_KEY = "unchanged"


@dataclass(frozen=True)
class EarlierWork:
    """What earlier done jobs of the same folder, task and options did: the files to leave out."""

    jobs: tuple[int, ...]  # newest first
    output_dir: Path
    # hash((path, size, mtime)) of their done items: one int a file, not the rows (a million files is ~60 MB, not
    # ~200 MB); a changed file is taken for unchanged only if its 64-bit hash meets one of them by chance.
    done: frozenset[int] = field(repr=False)

    def split(self, files: list[File]) -> tuple[list[File], dict[str, Any]]:
        """The files to take, and what was left out: ``{"files": N, "bytes": B, "jobs": [ids]}``."""
        done = self.done
        taken = [f for f in files if hash(f) not in done]
        left_bytes = sum(size for _, size, _ in files) - sum(size for _, size, _ in taken)
        return taken, {"files": len(files) - len(taken), "bytes": left_bytes, "jobs": list(self.jobs)}


def earlier_work(spec: TaskSpec, options: dict, source: Path, output_dir: Path | None) -> EarlierWork | None:
    """The earlier work a new job of ``source`` may build on, or None (the task takes the whole folder, no
    earlier job did this work, or its output folder is gone). ``output_dir``: the one asked for, if any."""
    if not spec.skip_unchanged:
        return None
    same = _same_work(spec.name, options, source)
    if not same:
        return None
    out = str(Path(output_dir).expanduser().resolve()) if output_dir else same[0][1]
    jobs = tuple(job_id for job_id, folder in same if folder == out)
    if not jobs or not Path(out).is_dir():
        return None
    marks = ",".join("?" * len(jobs))
    rows = db.execute_sql(f"SELECT path, size, mtime FROM item WHERE job_id IN ({marks}) AND status = ?",
                          (*jobs, ItemState.DONE))
    return EarlierWork(jobs, Path(out), frozenset(hash(row) for row in rows))


def _same_work(task: str, options: dict, source: Path) -> list[tuple[int, str]]:
    """(job id, output folder) of the folder jobs of ``source`` with this task and options that ended done,
    newest first. Options are compared as stored (JSON), so a default spelt out equals one left out."""
    wanted = json.loads(json.dumps(options))
    rows = (Job.select(Job.id, Job.options, Job.output_dir)
            .where((Job.source == str(source)) & (Job.task == task) & (Job.source_kind == SourceKind.FOLDER)
                   & (Job.status == JobState.DONE))
            .order_by(Job.id.desc()))
    return [(job.id, job.output_dir) for job in rows if job.options == wanted]


def describe_unchanged(unchanged: dict[str, Any]) -> str:
    """"97 unchanged file(s) skipped (done in job 4; --all to redo them)": what a job left out, for people."""
    jobs = unchanged.get("jobs") or []
    where = ("job " if len(jobs) == 1 else "jobs ") + ", ".join(map(str, jobs[:5])) + (", ..." if len(jobs) > 5 else "")
    return f"{unchanged['files']} unchanged file(s) skipped (done in {where}; --all to redo them)"
