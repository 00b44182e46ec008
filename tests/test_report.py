"""batchdesk.jobs.report.write_report against a real temporary store: CSV, JSON and XLSX."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from batchdesk.jobs import report
from batchdesk.jobs.report import ReportError, summary_path, write_report
from conftest import scaled
from data.models import CANCELLED, DONE, FAILED, PENDING, Item, Job
from data.store import close_store, open_store

T0 = 1_700_000_000.0


@pytest.fixture
def store(tmp_path: Path):
    open_store(tmp_path / "s.db")
    yield
    close_store()


@pytest.fixture
def job(store) -> Job:
    job = Job.create(
        name="nightly",
        source="/data/in",
        task="checksum",
        options={},
        status=DONE,
        items_total=6,
        items_done=3,
        items_failed=1,
        items_cancelled=1,
        bytes_total=6000,
        output_dir="/data/out",
        created_at=T0 - 5,
        started_at=T0,
        finished_at=T0 + 10,
    )
    rows = [
        ("a.txt", DONE, {"sha256": "aa", "size": 100, "type": "text"}, None, 0.5),
        ("sub/b c.pdf", DONE, {"sha256": "bb", "size": 2000, "type": "pdf"}, None, 1.5),
        ("=cmd|' /C calc'!A0.csv", DONE, {"sha256": "cc", "size": 900}, None, 1.0),
        ("broken.docx", FAILED, None, "not a valid DOCX (corrupt zip)\x00", 0.25),
        ("late.txt", CANCELLED, None, None, None),
        ("never.txt", PENDING, None, None, None),
    ]
    for n, (path, status, result, error, duration) in enumerate(rows):
        Item.create(
            job=job,
            path=path,
            size=1000,
            status=status,
            result=result,
            error=error,
            duration=duration,
            started_at=T0 + n if duration is not None else None,
            finished_at=T0 + n + duration if duration is not None else None,
        )
    # a second job whose items must not leak into the first one's report
    other = Job.create(name="other", source="/x", task="checksum", output_dir="/y", created_at=T0)
    Item.create(job=other, path="other.txt", status=DONE, result={"sha256": "zz"})
    return job


def check_summary(summary: dict) -> None:
    assert int(summary["job_id"]) == 1 and summary["name"] == "nightly" and summary["task"] == "checksum"
    counts = (summary["items_total"], summary["done"], summary["failed"], summary["cancelled"], summary["pending"])
    assert tuple(int(c) for c in counts) == (6, 3, 1, 1, 1)
    assert float(summary["duration_s"]) == 10.0
    assert float(summary["throughput_items_per_s"]) == 0.4  # (3 done + 1 failed) / 10 s
    assert float(summary["success_rate"]) == 0.75  # 3 / (3 + 1): cancelled is not a failure
    assert float(summary["cpu_s"]) == 3.25
    assert float(summary["mean_item_s"]) == 0.8125
    assert int(summary["bytes_total"]) == 6000 and int(summary["bytes_done"]) == 3000
    assert summary["status"] == DONE and summary["started"] and summary["finished"]


def test_csv_report_items_and_sibling_summary(job: Job, tmp_path: Path) -> None:
    out = tmp_path / "reports" / "job1.csv"
    assert write_report(job.id, "csv", out) == out
    with open(out, newline="", encoding="utf-8") as fh:
        items = list(csv.DictReader(fh))
    assert [i["path"] for i in items] == [
        "a.txt", "sub/b c.pdf", "=cmd|' /C calc'!A0.csv", "broken.docx", "late.txt", "never.txt"]
    assert [i["status"] for i in items] == ["done", "done", "done", "failed", "cancelled", "pending"]
    assert json.loads(items[1]["result"]) == {"sha256": "bb", "size": 2000, "type": "pdf"}
    assert items[1]["result"] == '{"sha256":"bb","size":2000,"type":"pdf"}'  # compact
    assert items[3]["error"].startswith("not a valid DOCX (corrupt zip)") and items[3]["result"] == ""
    assert items[1]["duration_s"] == "1.5" and items[4]["duration_s"] == ""
    assert list(items[0]) == report.ITEM_COLUMNS
    side = summary_path(out)
    assert side == tmp_path / "reports" / "job1.summary.csv"
    with open(side, newline="", encoding="utf-8") as fh:
        rows = list(csv.reader(fh))
    assert rows[0] == ["key", "value"]
    check_summary(dict(rows[1:]))
    assert not list((tmp_path / "reports").glob("*.part"))


def test_json_report_has_the_summary_and_every_item_with_result_error_and_duration(job: Job, tmp_path: Path) -> None:
    out = write_report(job.id, "JSON", tmp_path / "job1.json")
    doc = json.loads(out.read_text(encoding="utf-8"))
    check_summary(doc["summary"])
    assert doc["summary"]["success_rate"] == 0.75
    assert len(doc["items"]) == 6
    first = doc["items"][0]
    assert first["path"] == "a.txt" and first["result"] == {"sha256": "aa", "size": 100, "type": "text"}
    assert first["error"] is None and first["duration_s"] == 0.5
    assert doc["items"][3]["error"].startswith("not a valid DOCX") and doc["items"][3]["result"] is None


def test_xlsx_report_has_summary_and_items_sheets_and_never_writes_a_formula(job: Job, tmp_path: Path) -> None:
    from openpyxl import load_workbook

    out = write_report(job.id, "xlsx", tmp_path / "job1.xlsx")
    wb = load_workbook(out)
    assert wb.sheetnames == ["Summary", "Items"]
    summary = dict(wb["Summary"].iter_rows(min_row=2, values_only=True))
    check_summary(summary)
    items = list(wb["Items"].iter_rows(values_only=True))
    assert list(items[0]) == report.ITEM_COLUMNS
    assert len(items) == 7
    assert items[3][1] == "=cmd|' /C calc'!A0.csv"  # kept as text...
    assert wb["Items"].cell(row=4, column=2).data_type == "s"  # ...never a formula
    assert items[4][8] == "not a valid DOCX (corrupt zip)"  # the NUL openpyxl refuses is dropped
    assert json.loads(items[2][9]) == {"sha256": "bb", "size": 2000, "type": "pdf"}


def test_items_are_streamed_in_chunks(job: Job, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for n in range(25):
        Item.create(job=job, path=f"bulk/{n:03d}.bin", status=DONE, result={"n": n}, duration=0.01)
    queries: list[tuple] = []
    real = report.db.obj.execute_sql

    def spy(sql, params=None, *args, **kwargs):
        if "AND id > ?" in sql:  # the item pages
            queries.append(params)
        return real(sql, params, *args, **kwargs)

    monkeypatch.setattr(report, "CHUNK", 7)
    monkeypatch.setattr(report.db.obj, "execute_sql", spy)
    out = write_report(job.id, "csv", tmp_path / "big.csv")
    with open(out, newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == 31
    assert [int(r["id"]) for r in rows] == sorted(int(r["id"]) for r in rows)
    assert len(queries) == 5  # ceil(31 / 7): never one query for everything
    assert all(limit == 7 for _job, _after, limit in queries)


def test_running_job_and_empty_job(store, tmp_path: Path) -> None:
    import time

    running = Job.create(name="r", source="/s", task="checksum", output_dir="/o", created_at=T0, status="running",
                         started_at=time.time() - 4)
    Item.create(job=running, path="x", status=DONE, duration=0.1, result={"a": 1})
    doc = json.loads(write_report(running.id, "json", tmp_path / "r.json").read_text())
    assert 3.9 <= doc["summary"]["duration_s"] < scaled(60)  # measured up to now
    assert doc["summary"]["finished"] == ""
    empty = Job.create(name="e", source="/s", task="checksum", output_dir="/o", created_at=T0)
    doc = json.loads(write_report(empty.id, "json", tmp_path / "e.json").read_text())
    assert doc["items"] == []
    assert doc["summary"]["success_rate"] is None and doc["summary"]["throughput_items_per_s"] is None


def test_unknown_format_or_job_is_a_clear_error_and_writes_nothing(job: Job, tmp_path: Path) -> None:
    with pytest.raises(ReportError, match="unknown report format 'pdf'; use one of csv, json, xlsx"):
        write_report(job.id, "pdf", tmp_path / "x.pdf")
    with pytest.raises(ReportError, match="no job 999 in the store"):
        write_report(999, "csv", tmp_path / "x.csv")
    assert not (tmp_path / "x.csv").exists()
