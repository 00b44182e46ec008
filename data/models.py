"""Peewee models: the store is the single source of truth and the control plane.

Times are Unix seconds (floats): cheap to compare, sort and subtract in SQL and in Python.
Statuses are the ``str`` enums of :mod:`data.states`, stored as their values.
"""

from __future__ import annotations

import json
from typing import Any

from peewee import (
    SQL,
    AutoField,
    BigIntegerField,
    BlobField,
    BooleanField,
    CharField,
    DatabaseProxy,
    FloatField,
    ForeignKeyField,
    IntegerField,
    Model,
    TextField,
    fn,
)

from data.states import JOB_ACTIVE as JOB_ACTIVE  # re-exported, like the old names below
from data.states import JOB_ENDED as JOB_ENDED
from data.states import BatchKind, BatchState, ItemState, JobState, SourceKind, WatchState, WorkerState

db = DatabaseProxy()

# Old names of the states, which batchdesk and some tests still import from here (new code imports
# data.states): delete them, and the two re-exports above, once nothing does.
QUEUED, RUNNING, PAUSED = JobState.QUEUED, JobState.RUNNING, JobState.PAUSED
DONE, FAILED, CANCELLED = JobState.DONE, JobState.FAILED, JobState.CANCELLED
RETRY_WAIT, DEAD, HELD = BatchState.RETRY_WAIT, BatchState.DEAD, BatchState.HELD
PENDING = ItemState.PENDING


class JSONField(TextField):
    """A small JSON document stored as text."""

    def db_value(self, value: Any) -> str | None:
        return None if value is None else json.dumps(value, separators=(",", ":"), sort_keys=True)

    def python_value(self, value: str | None) -> Any:
        return None if value is None else json.loads(value)


class BaseModel(Model):
    class Meta:
        database = db


class Watch(BaseModel):
    """An inbox folder whose dropped files feed a rolling job."""

    id = AutoField()
    path = TextField(unique=True)
    task = CharField()
    options = JSONField(default=dict)
    recursive = BooleanField(default=False)
    include = JSONField(default=list)
    exclude = JSONField(default=list)
    on_done = CharField(default="keep")  # keep | move | delete
    on_fail = CharField(default="keep")  # keep | move
    queue = CharField(default="default")
    polling = BooleanField(default=False)
    status = CharField(default=WatchState.ACTIVE)
    error = TextField(null=True)
    created_at = FloatField()


class Job(BaseModel):
    watch_id: int | None  # peewee's column of ``watch`` (declared for the type checker)

    id = AutoField()
    name = CharField()
    source = TextField()  # absolute root folder; item paths are relative to it
    source_kind = CharField(default=SourceKind.FOLDER)
    watch = ForeignKeyField(Watch, null=True, backref="jobs", on_delete="SET NULL")
    task = CharField()
    options = JSONField(default=dict)
    queue = CharField(default="default")
    status = CharField(default=JobState.QUEUED, index=True)
    items_total = IntegerField(default=0)
    items_done = IntegerField(default=0)
    items_failed = IntegerField(default=0)
    items_cancelled = IntegerField(default=0)
    bytes_total = BigIntegerField(default=0)
    bytes_done = BigIntegerField(default=0)
    batches_total = IntegerField(default=0)
    batches_done = IntegerField(default=0)
    # Planner's choice and why, plus retry/timeout policy: {"batch_size":…, "workers":…, "reason":…}
    batch_config = JSONField(default=dict)
    # Highest item id already cut into a batch: batches are id ranges, cut lazily by the feeder.
    cut_cursor = IntegerField(default=0)
    output_dir = TextField()
    created_at = FloatField(index=True)
    started_at = FloatField(null=True)
    finished_at = FloatField(null=True)
    status_at = FloatField(null=True)  # when the status last changed (a cancel's grace counts from it)
    reason = TextField(null=True)  # why it is paused, cancelled or failed, for people
    paused_by = CharField(null=True)  # a data.states.PausedBy while paused
    # The `batchdesk run`/`resume` processes waiting for it: [{"host", "pid", "started"}]. When every
    # one of them is gone (killed), the desk pauses the job: a `run` owns its job.
    waiters = JSONField(default=list, constraints=[SQL("DEFAULT '[]'")])
    end_step = CharField(null=True)  # the task's end-of-job step ("report"), run as a final batch
    outputs = JSONField(default=list, constraints=[SQL("DEFAULT '[]'")])  # files the end-of-job step wrote

    @classmethod
    def has_waiters(cls) -> Any:
        """A WHERE clause: somebody waits for the job (its waiters are stored as JSON text)."""
        return fn.LENGTH(cls.waiters) > 2

    @property
    def items_ended(self) -> int:
        return self.items_done + self.items_failed + self.items_cancelled


class Batch(BaseModel):
    """A contiguous range of one job's item ids; one RQ job carries one batch id."""

    job_id: int  # peewee's column of ``job`` (declared for the type checker)

    id = AutoField()
    job = ForeignKeyField(Job, backref="batches", on_delete="CASCADE")
    seq = IntegerField()
    kind = CharField(default=BatchKind.ITEMS)  # items, or the job's final (end-of-job) step
    first_item = IntegerField()
    last_item = IntegerField()
    items_count = IntegerField()
    bytes_count = BigIntegerField(default=0)
    status = CharField(default=BatchState.QUEUED, index=True)
    attempts = IntegerField(default=0)
    rq_job_id = CharField(null=True)
    queued_at = FloatField(null=True)
    retry_at = FloatField(null=True)
    started_at = FloatField(null=True)
    heartbeat_at = FloatField(null=True)
    finished_at = FloatField(null=True)
    worker = CharField(null=True)
    pid = IntegerField(null=True)  # the work-horse process running it
    error = TextField(null=True)

    class Meta:
        indexes = ((("job", "seq"), True),)


class Item(BaseModel):
    job_id: int  # peewee's column of ``job`` (declared for the type checker)

    id = AutoField()
    job = ForeignKeyField(Job, backref="items", on_delete="CASCADE")
    batch = IntegerField(null=True)  # the batch that ended it (plain int: no FK check on the hot path)
    path = TextField()  # relative to job.source
    size = BigIntegerField(default=0)
    mtime = FloatField(default=0)
    hash = CharField(null=True)
    link = BooleanField(default=False)  # a symlink (inside the root) at scan time: re-checked before use
    status = CharField(default=ItemState.PENDING)
    attempts = IntegerField(default=0)
    result = JSONField(null=True)
    error = TextField(null=True)
    duration = FloatField(null=True)
    started_at = FloatField(null=True)
    finished_at = FloatField(null=True)


# Items are looked up by status only as 'pending' (the feeder and the runner) or 'failed' (retries,
# the failed-items views), so those two get partial indexes: an item that ends done leaves one
# index and enters none, which keeps the per-item UPDATE on the hot path cheap.
ITEM_STATUS_INDEXES = tuple(
    f"CREATE INDEX IF NOT EXISTS item_{status} ON item (job_id) WHERE status = '{status}'"
    for status in (ItemState.PENDING, ItemState.FAILED)
)
for _sql in ITEM_STATUS_INDEXES:
    Item.add_index(SQL(_sql))


class WorkerRow(BaseModel):
    """A worker process as last reported by itself (heartbeat) and by the pool."""

    name = CharField(primary_key=True)
    host = CharField()
    pid = IntegerField()
    state = CharField(default=WorkerState.IDLE)
    job = IntegerField(null=True)
    batch = IntegerField(null=True)
    rss = BigIntegerField(default=0)
    started_at = FloatField()
    heartbeat_at = FloatField()


class ResourceSample(BaseModel):
    ts = FloatField(index=True)
    cpu = FloatField()
    ram_used = BigIntegerField()
    ram_free = BigIntegerField()
    iowait = FloatField(default=0)
    disk_free = BigIntegerField(default=0)
    load1 = FloatField(default=0)
    workers = IntegerField(default=0)
    queued = IntegerField(default=0)


class Alert(BaseModel):
    ts = FloatField(index=True)
    level = CharField(default="warning")  # info | warning | error
    kind = CharField()  # cpu | ram | iowait | disk | breaker | worker | watch | job
    message = TextField()
    job = IntegerField(null=True)
    acked = BooleanField(default=False)


class Setting(BaseModel):
    """Key/value control rows: desired worker count, pool target and reason, and so on."""

    key = CharField(primary_key=True)
    value = JSONField(null=True)


class SeenFile(BaseModel):
    """A file a watch has taken (path, size, mtime), so it is never processed twice."""

    watch_id: int  # peewee's column of ``watch`` (declared for the type checker)

    watch = ForeignKeyField(Watch, backref="seen", on_delete="CASCADE")
    path = TextField()
    size = BigIntegerField()
    mtime = FloatField()
    item = IntegerField(null=True)
    taken_at = FloatField()

    class Meta:
        indexes = ((("watch", "path"), True),)


class IndexCollection(BaseModel):
    """A searchable document index (the ``index`` task's ``collection``): one embedding model per
    collection, recorded when its first document is written. ``generation`` grows with every write, so
    a searcher's cached matrix knows when it is stale (data.index_snapshot)."""

    id = AutoField()
    name = CharField(unique=True)
    model = CharField()
    dim = IntegerField()
    generation = BigIntegerField(default=0)
    documents = IntegerField(default=0)
    chunks = BigIntegerField(default=0)
    created_at = FloatField()
    updated_at = FloatField()


class IndexDocument(BaseModel):
    """One indexed file of a collection: where it is, its content hash and its metadata (search filters)."""

    collection_id: int  # peewee's column of ``collection`` (declared for the type checker)

    id = AutoField()
    collection = ForeignKeyField(IndexCollection, backref="documents_of", on_delete="CASCADE")
    path = TextField()  # absolute
    hash = CharField()  # sha256 of the file's bytes: unchanged content is never embedded again
    size = BigIntegerField(default=0)
    mtime = FloatField(default=0)
    format = CharField(null=True)
    title = TextField(null=True)
    author = TextField(null=True)
    created = CharField(null=True)  # ISO 8601, from the file's own properties when it has them
    modified = CharField(null=True)  # ISO 8601: the file's own property, else its modification time
    pages = IntegerField(null=True)
    words = IntegerField(default=0)
    lang = CharField(null=True)
    chunks = IntegerField(default=0)
    generation = BigIntegerField(default=0)  # the collection's generation when this version was written
    indexed_at = FloatField()

    class Meta:
        indexes = ((("collection", "path"), True),)


class IndexChunk(BaseModel):
    """A piece of a document's text with where it is (page, heading, offsets) and its vector."""

    document_id: int  # peewee's column of ``document`` (declared for the type checker)

    id = AutoField()
    document = ForeignKeyField(IndexDocument, backref="chunks_of", on_delete="CASCADE")
    seq = IntegerField()  # 0, 1, ... within the document
    page = IntegerField(null=True)
    page_end = IntegerField(null=True)
    heading = TextField(null=True)
    start_char = IntegerField(default=0)  # where the chunk is in the document's extracted text
    end_char = IntegerField(default=0)
    text = TextField()
    vector = BlobField()  # float16, little-endian, the collection's dimension

    class Meta:
        indexes = ((("document", "seq"), True),)


INDEX_MODELS = [IndexCollection, IndexDocument, IndexChunk]
ALL_MODELS = [Watch, Job, Batch, Item, WorkerRow, ResourceSample, Alert, Setting, SeenFile, *INDEX_MODELS]
