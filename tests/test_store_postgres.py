"""The PostgreSQL store against a real, throwaway PostgreSQL server (scale-out across machines).

A server is initialised in a temporary folder for this module and started on a free loopback port
(unix socket in the same folder); each test gets its own database. The tests skip only when no
PostgreSQL server binaries are installed, and fail instead when CI is set (``.ci/run`` installs them).
"""

from __future__ import annotations

import glob
import hashlib
import json
import os
import pwd
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path
from types import SimpleNamespace

import pytest

from batchdesk import locations
from conftest import batchdesk_env, make_files, scaled, wait_for
from data import queries, transitions
from data.models import Batch, Item, Job, Setting, WorkerRow, db
from data.queries import Outcome
from data.states import BatchState, ItemState, JobState
from data.store import (
    SCHEMA_VERSION,
    VERSION_TABLE,
    PostgresStore,
    StoreError,
    close_store,
    describe_store,
    open_store,
    qmark_to_format,
    write,
)
from test_store import check_cut_batch_ranges

PASSWORD = "pg-test-secret"
USER = "batchdesk"


# -- the server ---------------------------------------------------------------------------------
def postgres_bin_dir() -> Path | None:
    """The newest folder holding initdb and pg_ctl: Debian's /usr/lib/postgresql/N/bin, or PATH."""
    def version(path: str) -> int:
        match = re.search(r"/postgresql/(\d+)/", path)
        return int(match.group(1)) if match else 0

    candidates = sorted(glob.glob("/usr/lib/postgresql/*/bin"), key=version, reverse=True)
    on_path = shutil.which("pg_ctl")
    if on_path:
        candidates.append(str(Path(on_path).resolve().parent))
    for folder in candidates:
        if all(os.access(Path(folder) / tool, os.X_OK) for tool in ("initdb", "pg_ctl", "postgres")):
            return Path(folder)
    return None


def _missing(reason: str) -> None:
    if os.environ.get("CI"):
        pytest.fail(f"{reason}; .ci/run must install it")
    pytest.skip(f"{reason} (CI installs it)")


def require_postgres() -> Path:
    """The server binaries' folder; CI installs them, so there a missing one fails instead of skipping."""
    folder = postgres_bin_dir()
    if folder is None:
        _missing("no PostgreSQL server binaries (initdb, pg_ctl) under /usr/lib/postgresql/*/bin or on PATH: "
                 "apt-get install postgresql")
    try:
        import psycopg  # noqa: F401
    except ImportError:
        _missing("the psycopg driver is not installed: pip install 'batchdesk[postgres]'")
    return folder


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def pg_server(tmp_path_factory):
    """A PostgreSQL server for this module: (host, port). Runs as the ``postgres`` user when we are
    root (the server refuses root), in a folder that user can enter."""
    bindir = require_postgres()
    as_user: dict = {}
    if os.geteuid() == 0:
        try:
            account = pwd.getpwnam("postgres")
        except KeyError:
            _missing("running as root and there is no 'postgres' user to run the server as")
        as_user = {"user": account.pw_uid, "group": account.pw_gid, "extra_groups": []}
        base = Path(tempfile.mkdtemp(prefix="batchdesk-pg-"))  # pytest's root-only tmp is closed to it
        os.chown(base, account.pw_uid, account.pw_gid)
    else:
        base = tmp_path_factory.mktemp("pg")
    data, log = base / "data", base / "server.log"
    pwfile = base / "pwfile"
    pwfile.write_text(PASSWORD + "\n")
    if as_user:
        os.chown(pwfile, as_user["user"], as_user["group"])
    run = dict(cwd=base, capture_output=True, text=True, timeout=scaled(120), **as_user)
    init = subprocess.run([str(bindir / "initdb"), "-D", str(data), "-U", USER, "-E", "UTF8", "--no-sync",
                           "--auth-local=trust", "--auth-host=scram-sha-256", f"--pwfile={pwfile}"], **run)
    assert init.returncode == 0, f"initdb failed: {init.stderr or init.stdout}"
    for _attempt in range(3):  # the port was free a moment ago; retry if another process took it
        port = _free_port()
        options = (f"-p {port} -k {base} -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off "
                   "-c full_page_writes=off -c max_connections=200")
        start = subprocess.run([str(bindir / "pg_ctl"), "start", "-D", str(data), "-l", str(log), "-w",
                                "-t", f"{scaled(60):.0f}", "-o", options], **run)
        if start.returncode == 0:
            break
    else:
        pytest.fail(f"PostgreSQL did not start: {start.stderr}\n{log.read_text() if log.exists() else ''}")
    try:
        yield "127.0.0.1", port
    finally:
        subprocess.run([str(bindir / "pg_ctl"), "stop", "-D", str(data), "-m", "immediate", "-w"], **run)
        shutil.rmtree(base, ignore_errors=True)


@pytest.fixture
def pg_url(pg_server):
    """A fresh database on the module's server, as a store URL; dropped after the test."""
    import psycopg

    host, port = pg_server
    name = f"bd_{uuid.uuid4().hex[:12]}"
    admin = f"postgresql://{USER}:{PASSWORD}@{host}:{port}/postgres"
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {name}")
    yield f"postgresql://{USER}:{PASSWORD}@{host}:{port}/{name}"
    close_store()
    db.initialize(None)  # the next open_store binds afresh
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


@pytest.fixture
def pg(pg_url):
    return open_store(pg_url)


def _job(**kw) -> Job:
    return Job.create(name="j", source="/tmp", task="checksum", output_dir="/tmp/out", created_at=time.time(), **kw)


def _reopen(ref) -> None:
    close_store()
    db.initialize(None)
    open_store(ref)


# -- the store's behaviours on PostgreSQL --------------------------------------------------------
def test_opens_postgres_with_schema_version_and_double_precision_times(pg, pg_url):
    assert isinstance(pg, PostgresStore)
    assert pg.user_version == SCHEMA_VERSION
    assert pg.execute_sql(f"SELECT version FROM {VERSION_TABLE}").fetchall() == [(SCHEMA_VERSION,)]
    assert {"job", "batch", "item", "workerrow", "setting", "seenfile", "watch"} <= set(pg.get_tables())
    # Unix times survive to the microsecond (peewee's default REAL would round them to ~2 minutes).
    now = 1_790_000_000.123456
    job = _job()
    Job.update(started_at=now).where(Job.id == job.id).execute()
    assert Job.get_by_id(job.id).started_at == now
    _reopen(pg_url)  # opening again is a no-op migration
    assert db.obj.user_version == SCHEMA_VERSION


def test_newer_schema_is_refused_and_migrations_run_once(pg_url, monkeypatch):
    from data import store

    open_store(pg_url)
    calls = []

    def add_note(database):
        calls.append(1)
        database.execute_sql("ALTER TABLE alert ADD COLUMN note TEXT")

    monkeypatch.setattr(store, "SCHEMA_VERSION", SCHEMA_VERSION + 1)
    monkeypatch.setitem(store.MIGRATIONS, SCHEMA_VERSION + 1, add_note)
    _reopen(pg_url)
    _reopen(pg_url)
    assert calls == [1] and db.obj.user_version == SCHEMA_VERSION + 1
    assert "note" in {c.name for c in db.obj.get_columns("alert")}
    monkeypatch.setattr(store, "SCHEMA_VERSION", SCHEMA_VERSION)
    close_store()
    db.initialize(None)
    with pytest.raises(StoreError, match="newer batchdesk"):
        open_store(pg_url)


def test_counters_follow_item_rows_exactly_once(pg):
    job = _job()
    count, total = queries.insert_items(job.id, [(f"f{i}", 10, 0.0) for i in range(5)], links={"f4"})
    assert (count, total) == (5, 50)
    ids = [r[0] for r in pg.execute_sql("SELECT id FROM item ORDER BY id")]
    outcomes = [Outcome(ids[0], ItemState.DONE, {"x": "\x00"}, None, 1.0, 2.0, 10),
                Outcome(ids[1], ItemState.FAILED, None, "bad zip\x00", 1.0, 2.0, 10)]
    assert queries.finish_items(job.id, 1, outcomes) == (1, 1)
    # The same outcomes again (a racing second run of the batch) change nothing.
    assert queries.finish_items(job.id, 1, outcomes) == (0, 0)
    assert queries.end_pending(job.id, ItemState.CANCELLED) == 3
    job = Job.get_by_id(job.id)
    assert (job.items_done, job.items_failed, job.items_cancelled, job.bytes_done) == (1, 1, 3, 10)
    assert queries.item_counts(job.id) == {"done": 1, "failed": 1, "cancelled": 3}
    assert Item.get_by_id(ids[0]).result == {"x": "\x00"} and Item.get_by_id(ids[4]).link is True
    assert Item.get_by_id(ids[1]).error == "bad zip"  # PostgreSQL text cannot hold NUL: dropped, not fatal
    # retry --failed: the failed item is pending again, the counter and the job's end-step outputs follow
    Job.update(status=JobState.DONE, outputs=["/out/report.csv"]).where(Job.id == job.id).execute()
    assert queries.reset_failed(job.id) == 1
    job = Job.get_by_id(job.id)
    assert (job.items_failed, job.status, job.outputs) == (0, "queued", [])


def test_racing_runs_on_separate_connections_count_each_item_once(pg, pg_url):
    """Four runs of one batch (as on four hosts) finish the same 400 items at once."""
    job = _job()
    queries.insert_items(job.id, [(f"f{i}", i + 1, 0.0) for i in range(400)])
    ids = [r[0] for r in pg.execute_sql("SELECT id FROM item ORDER BY id")]
    sizes = dict(zip(ids, range(1, 401), strict=True))
    errors: list[BaseException] = []
    start = threading.Barrier(4)

    def run(n: int) -> None:
        try:
            open_store(pg_url)  # this thread's own connection
            start.wait()
            for k in range(0, len(ids), 50):
                now = time.time() + n
                outcomes = [Outcome(i, ItemState.DONE if i % 7 else ItemState.FAILED, {"n": n},
                                    None if i % 7 else "x", now, now + 0.001, sizes[i]) for i in ids[k:k + 50]]
                queries.finish_items(job.id, 1, outcomes)
        except BaseException as exc:
            errors.append(exc)
        finally:
            close_store()

    threads = [threading.Thread(target=run, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(scaled(60))
    assert not errors, errors
    open_store(pg_url)
    job = Job.get_by_id(job.id)
    counts = queries.item_counts(job.id)
    assert (job.items_done, job.items_failed) == (counts["done"], counts["failed"]) and sum(counts.values()) == 400
    assert job.bytes_done == sum(sizes[i] for i in ids if i % 7)
    assert pg.execute_sql("SELECT MAX(attempts) FROM item").fetchone()[0] == 1


def test_write_takes_the_write_lock_up_front(pg, pg_url):
    """write() on PostgreSQL serialises writers like SQLite's BEGIN IMMEDIATE (an advisory lock)."""
    inside, events = threading.Event(), []

    def holder() -> None:
        open_store(pg_url)
        with write():
            events.append("a-in")
            inside.set()
            time.sleep(0.4)  # proves a non-event: meanwhile the other writer must not get in
            events.append("a-out")
        close_store()

    t = threading.Thread(target=holder)
    t.start()
    inside.wait(scaled(10))
    with write():
        events.append("b-in")
    t.join(scaled(10))
    assert events == ["a-in", "a-out", "b-in"]


def test_cut_batch_takes_ranges_in_order_and_respects_bytes(pg):
    check_cut_batch_ranges(_job())


def test_end_pending_by_range_and_around_running_batches(pg):
    job = _job()
    queries.insert_items(job.id, [(f"f{i}", 1, 0.0) for i in range(9)])
    a = queries.cut_batch(job, 3, 1 << 30)
    b = queries.cut_batch(job, 3, 1 << 30)
    Batch.update(status=BatchState.RUNNING).where(Batch.id == b.id).execute()
    assert queries.end_pending(job.id, ItemState.FAILED, "broken", first=a.first_item, last=a.last_item) == 3
    assert queries.end_pending(job.id, ItemState.CANCELLED, skip_running=True) == 3  # b's items are left to its runner
    assert [r[0] for r in queries.pending_in(b)] == list(range(b.first_item, b.last_item + 1))
    job = Job.get_by_id(job.id)
    assert (job.items_failed, job.items_cancelled) == (3, 3)
    assert transitions.finish_batch(b.id) and not transitions.finish_batch(b.id)


def test_job_control_housekeeping_and_views_on_postgres(pg):
    """The other modules' raw SQL (``?`` placeholders, LIKE, aggregates) runs unchanged."""
    from batchdesk import dashboard as views
    from batchdesk.jobs import cleanup, stats
    from batchdesk.jobs import control as jobs
    from batchdesk.jobs.report import report_summary

    job = _job(status=JobState.RUNNING, started_at=time.time() - 5)
    queries.insert_items(job.id, [(f"dir/f{i}%.txt", 1000, 0.0) for i in range(6)])
    batch = queries.cut_batch(Job.get_by_id(job.id), 6, 1 << 30)
    pending = queries.pending_in(batch)
    now = time.time()
    queries.finish_items(job.id, batch.id, [
        Outcome(i, ItemState.DONE if n < 4 else ItemState.FAILED, {"n": n}, None if n < 4 else "it's 100% broken",
                now, now + 0.5, s)
        for n, (i, _rel, s, _link, _mtime) in enumerate(pending)])
    Batch.update(status=BatchState.DEAD, finished_at=now).where(Batch.id == batch.id).execute()
    assert views.failed_count(job.id, "100%") == 2 and views.failed_count(job.id) == 2
    assert [f.path for f in views.failed_items(job.id, "f5")] == ["dir/f5%.txt"]
    assert views.job_detail(job.id).bytes_done == 4000
    assert views.jobs_overview()[0].done == 4 and views.running_work() == 1
    summary = report_summary(Job.get_by_id(job.id))
    assert json.dumps(summary) and summary["done"] == 4 and summary["bytes_done"] == 4000  # no Decimal
    rows = stats.stats()
    assert rows[0]["done"] == 4 and rows[0]["avg_item_ms"] == pytest.approx(500.0)
    assert [b.id for b in jobs.dead_batches()] == [batch.id]
    assert jobs.retry_dead(batch.id) == 2
    assert Job.get_by_id(job.id).items_failed == 0
    jobs.cancel(job.id)
    assert Job.get_by_id(job.id).items_cancelled == 2
    Job.update(finished_at=1.0).where(Job.id == job.id).execute()
    assert cleanup.cleanup(1).jobs == 1 and Item.select().count() == 0


def test_upserts_replace_rows_on_postgres(pg):
    Setting.insert(key="k", value={"a": 1}).on_conflict_replace().execute()  # kept working for existing callers
    Setting.insert(key="k", value={"a": 2}).on_conflict_replace().execute()
    Setting.insert(key="k", value=[3]).on_conflict(conflict_target=[Setting.key], preserve=[Setting.value]).execute()
    assert [(s.key, s.value) for s in Setting.select()] == [("k", [3])]
    WorkerRow.insert(name="w", host="h", pid=1, state="busy", job=7, rss=5, started_at=1, heartbeat_at=1).execute()
    WorkerRow.insert(name="w", host="h2", pid=2, state="idle", started_at=2,
                     heartbeat_at=2).on_conflict_replace().execute()
    row = WorkerRow.get_by_id("w")
    assert (row.host, row.pid, row.state, row.job, row.rss) == ("h2", 2, "idle", None, 0)


def test_qmark_placeholders_become_psycopg_ones():
    assert qmark_to_format("SELECT a FROM t WHERE x=? AND y IN (?, ?)") == (
        "SELECT a FROM t WHERE x=%s AND y IN (%s, %s)")
    assert qmark_to_format("SELECT '?', 'it''s ?%' FROM t WHERE p LIKE ? ESCAPE '\\'") == \
        "SELECT '?', 'it''s ?%%' FROM t WHERE p LIKE %s ESCAPE '\\'"


def test_store_setting_takes_a_url_from_flag_env_and_config_file(tmp_path, monkeypatch):
    from batchdesk.config import load_settings
    from workers import runner

    url = "postgresql://bd:s3cret@db.example:5432/batchdesk"
    config = tmp_path / "c.toml"
    config.write_text(f'store = "{url}"\n')
    assert load_settings({}, config).store_ref == url
    monkeypatch.setenv("BATCHDESK_STORE", url + "2")
    assert load_settings({}, config).store_path == url + "2"
    assert load_settings({"store": url + "3"}, config).store_ref == url + "3"
    monkeypatch.delenv("BATCHDESK_STORE")
    assert load_settings({"store": "rel/s.sqlite3"}).store_ref == (Path.cwd() / "rel/s.sqlite3").resolve()
    assert describe_store(url) == "postgresql://bd:***@db.example:5432/batchdesk"
    saved = runner.CONFIG.store
    try:
        runner.configure(url)
        assert runner.CONFIG.store == url
    finally:
        runner.CONFIG.store = saved


def test_unreachable_server_is_a_clear_error_without_the_password(pg_server):
    host, _port = pg_server
    url = f"postgresql://{USER}:{PASSWORD}@{host}:{_free_port()}/nothing?connect_timeout=5"
    with pytest.raises(StoreError) as info:
        open_store(url)
    assert "cannot open the store postgresql://batchdesk:***@" in str(info.value)
    assert PASSWORD not in str(info.value)
    db.initialize(None)


# -- end to end: a desk and two workers "on other machines" sharing the PostgreSQL store --------
def _cli(*args: str, env: dict, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "batchdesk", *args], capture_output=True, text=True, env=env,
                          timeout=scaled(timeout))


@pytest.mark.slow
def test_desk_and_two_remote_workers_share_a_postgres_store(tmp_path, pg_url, redis_url):
    import redis
    from rq import Worker

    env = batchdesk_env()
    files = make_files(tmp_path / "in", 600, 1, 4096, nested=4, seed=7)
    logs: dict[str, Path] = {}
    procs: dict[str, subprocess.Popen] = {}

    def start(name: str, args: list[str], extra_env: dict | None = None) -> None:
        logs[name] = tmp_path / f"{name}.log"
        with open(logs[name], "w") as out:
            procs[name] = subprocess.Popen([sys.executable, "-m", "batchdesk", *args], env={**env, **(extra_env or {})},
                                           stdout=out, stderr=subprocess.STDOUT)

    def output() -> str:
        return "\n".join(f"--- {n} (exit {procs[n].poll()}):\n{p.read_text()[-3000:]}" for n, p in logs.items())

    desk_dir = tmp_path / "desk"
    try:
        start("desk", ["--data-dir", str(desk_dir), "--redis-url", redis_url, "--store", pg_url, "--workers", "0",
                       "serve"])
        # Two workers as if on two other machines: their own data dirs, the broker URL, the store URL
        # (one by flag, one by environment).
        start("worker-a", ["--data-dir", str(tmp_path / "host-a"), "worker", "--redis-url", redis_url,
                           "--store", pg_url, "--name", "host-a-w1"])
        start("worker-b", ["--data-dir", str(tmp_path / "host-b"), "worker", "--redis-url", redis_url,
                           "--name", "host-b-w1"], {"BATCHDESK_STORE": pg_url})
        connection = redis.Redis.from_url(redis_url)
        wait_for(lambda: {w.name for w in Worker.all(connection=connection)} == {"host-a-w1", "host-b-w1"}
                 or any(p.poll() is not None for p in procs.values()), 60, 0.1, "both workers to listen")
        assert all(p.poll() is None for p in procs.values()), output()
        wait_for(lambda: locations.desk_info_path(desk_dir).exists(), 30, 0.1, "the desk to start")
        # One desk per store: a second one (another data dir, as on another machine) is refused.
        second = _cli("--data-dir", str(tmp_path / "host-a"), "--redis-url", redis_url, "--store", pg_url,
                      "--workers", "0", "serve", env=env, timeout=60)
        assert second.returncode == 2 and "another batchdesk desk is running for the store" in second.stderr, \
            second.stderr
        assert PASSWORD not in second.stderr

        submitted = _cli("--data-dir", str(desk_dir), "--store", pg_url, "submit", str(tmp_path / "in"), "--json",
                         env=env)
        assert submitted.returncode == 0, submitted.stderr + output()
        job_id = json.loads(submitted.stdout)["job"]

        open_store(pg_url)
        job = wait_for(lambda: (lambda j: j if j.status in ("done", "failed", "cancelled") else None)(
            Job.get_by_id(job_id)), 120, 0.2, "the job to end")
        assert (job.status, job.items_total, job.items_done, job.items_failed) == ("done", 600, 600, 0), output()
        assert job.bytes_done == job.bytes_total == sum(len(b) for b in files.values())
        items = list(Item.select().where(Item.job == job_id))
        assert sorted(i.path for i in items) == sorted(files)
        assert {(i.status, i.attempts) for i in items} == {(ItemState.DONE, 1)}  # each item ended once, by one run
        for item in items:
            assert item.result["sha256"] == hashlib.sha256(files[item.path]).hexdigest(), item.path
        batches = list(Batch.select().where(Batch.job == job_id))
        assert {b.status for b in batches} == {BatchState.DONE}
        assert sum(b.items_count for b in batches) == 600
        assert {b.worker for b in batches} == {"host-a-w1", "host-b-w1"}, "both remote workers took batches"
        assert {w.name: w.host for w in WorkerRow.select()} == {"host-a-w1": socket.gethostname(),
                                                                "host-b-w1": socket.gethostname()}
        # The job's end step (the checksum duplicates report) ran on a worker, against the same store.
        assert [Path(p).name for p in job.outputs] == ["duplicates.csv"], job.outputs

        # The CLI reads the same store from anywhere (here: the URL in the environment).
        cli_env = {**env, "BATCHDESK_STORE": pg_url}
        shown = _cli("--data-dir", str(desk_dir), "show", str(job_id), "--json", env=cli_env)
        assert shown.returncode == 0 and json.loads(shown.stdout)["done"] == 600, shown.stderr
        report = _cli("--data-dir", str(desk_dir), "report", str(job_id), "--format", "json",
                      "-o", str(tmp_path / "r.json"), env=cli_env)
        assert report.returncode == 0, report.stderr
        assert len(json.loads((tmp_path / "r.json").read_text())["items"]) == 600
        info = _cli("--data-dir", str(desk_dir), "info", "--json", env=cli_env)
        assert info.returncode == 0 and PASSWORD not in json.loads(info.stdout)["store"], info.stderr
    finally:
        for proc in procs.values():
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in procs.values():
            try:
                proc.wait(scaled(60))
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(scaled(10))
    assert all(p.returncode == 0 for p in procs.values()), output()


@pytest.mark.slow
def test_run_with_the_desks_own_workers_on_a_postgres_store(tmp_path, pg_url):
    """`batchdesk run` on one machine with the store in PostgreSQL: the desk's pool gets the URL by
    environment (never on a command line, where `ps` would show its password)."""
    files = make_files(tmp_path / "in", 200, 1, 512, seed=3)
    env = batchdesk_env(BATCHDESK_STORE=pg_url)
    try:
        done = _cli("--data-dir", str(tmp_path / "data"), "--broker", "embedded", "--workers", "1", "run",
                    str(tmp_path / "in"), "--json", env=env)
    finally:  # the store is shared with other tests' leftover jobs: its background desk would stay for them
        _cli("--data-dir", str(tmp_path / "data"), "stop", env=env)
    assert done.returncode == 0, done.stderr
    summary = json.loads(done.stdout)
    assert (summary["status"], summary["done"], summary["failed"]) == ("done", 200, 0), summary
    open_store(pg_url)
    assert Item.select().where(Item.status == ItemState.DONE).count() == len(files)


def test_the_pool_passes_the_store_url_by_environment(tmp_path, monkeypatch):
    from batchdesk.desk import pool

    seen = {}

    def popen(command, env, **kw):
        seen.update(command=command, env=env)
        return SimpleNamespace(pid=-1)

    monkeypatch.setattr(pool.subprocess, "Popen", popen)
    url = f"postgresql://{USER}:{PASSWORD}@127.0.0.1:5432/batchdesk"
    pool.WorkerPool("redis://:x@127.0.0.1:1/0", url, tmp_path, nice=0)._spawn()  # nice=0: no process to renice
    assert seen["env"]["BATCHDESK_STORE"] == url
    assert not any(PASSWORD in arg for arg in seen["command"]), seen["command"]
