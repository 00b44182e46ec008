"""Every desk-side tunable, one line each saying what it is for, so the CLI help, the config docs and the
code agree. (The workers' own tunables are in workers/defaults.py; the store's in data/.)"""

from __future__ import annotations

# -- queues and brokers ------------------------------------------------------------------------------
BROKER_MODE = "auto"  # auto: a managed redis-server where one is installed, else the embedded broker
BROKER_MODES = ("auto", "embedded", "managed")  # what --broker accepts (--redis-url means external)
QUEUES = ("high", "default", "low")  # the RQ queues, drained in this order by every worker
DEFAULT_QUEUE = "default"  # a job's queue unless it asks (--priority) or its task is routed
RESULT_TTL = 600  # seconds RQ keeps a finished batch's queue entry (for `rq info` and rq-dashboard)
FAILURE_TTL = 7 * 24 * 3600  # seconds RQ keeps a failed batch's queue entry

# -- batches ------------------------------------------------------------------------------------------
BATCH_TARGET_SECONDS = 2.0  # work per batch the planner aims at (first from cost models, then measured)
BATCH_MIN_ITEMS = 1  # the smallest batch
BATCH_MAX_ITEMS = 50000  # the largest batch, in items
# A job estimated at less work than this is one batch, not split over the workers: a batch start (~30-50 ms)
# costs more than sharing it saves, and a small job behind a long one then needs only one worker slot.
SPREAD_MIN_SECONDS = 0.1
BATCH_MAX_BYTES = 2 * 1024 * 1024 * 1024  # the largest batch, in bytes (and at most 1/8 of free RAM per worker)
BATCH_MIN_BYTES = 16 * 1024 * 1024  # a batch's byte cap never shrinks below this (free RAM low, many workers)
# Batches kept queued per queue and per worker, so no worker waits for the feeder; which job's batch is
# queued next goes round robin, and a job with nothing queued or running gets one at the front at once.
QUEUE_AHEAD_PER_WORKER = 2
EVEN_SPLIT_ROUNDS = 3  # a job that fits in this many batches per worker is cut into equal batches
# While another job waits for a worker, a running batch with more work than this left (at its job's
# measured item time) hands back what lies beyond BATCH_TARGET_SECONDS of it: the other job starts soon.
BATCH_LONG_SECONDS = 2 * BATCH_TARGET_SECONDS
HAND_BACK_MIN_SECONDS = 0.5  # a worker is idle: a running batch gives it half its rest if that is this much work
PLAN_REVISION_FACTOR = 2.0  # the plan's item time moved this many times (up or down): a revision is recorded
PLAN_REVISIONS_KEPT = 20  # revisions of a job's plan kept on the job (the newest), for `show` and the UI

# -- worker processes ---------------------------------------------------------------------------------
MAX_WORKERS = 32  # the pool never grows past this
WORKER_RAM_BUDGET = 200 * 1024 * 1024  # free RAM each worker should have before the planner adds one
WORKER_NICE = 10  # workers' niceness (0: as the desk), below the user's own programs
STOP_GRACE_SECONDS = 10.0  # a stopping worker whose item in hand takes longer than this is killed
# A headless desk whose stop takes longer than this is hung: its stacks go to its log and its processes are killed
# (shorter than DESK_STOP_WAIT_SECONDS, so `batchdesk stop` still sees it let go).
STOP_STALL_SECONDS = 25.0

# -- the desk's loop -----------------------------------------------------------------------------------
DESK_TICK_SECONDS = 0.2  # the desk feeds batches at least this often (a submit wakes it at once)
# ... and this often while it has nothing to carry and no drop folder to watch (a lingering background desk):
# a submit, a command's resume and every batch's end wake it at once anyway
DESK_IDLE_TICK_SECONDS = 1.0
RECONCILE_SECONDS = 1.0  # how often the store is checked against the broker and the workers
MONITOR_SECONDS = 2.0  # how often resources are sampled (and worker rows refreshed)
RESIZE_SECONDS = 5.0  # how often the pool is re-sized from the planner
CLEANUP_SECONDS = 3600.0  # how often ended jobs past their retention are forgotten
BATCH_STALE_SECONDS = 30.0  # a running batch with no heartbeat for this long is re-queued
# A background desk (started by `run`, `resume` or `submit`) lingers this long after its last job, so
# the next command finds warm workers; `batchdesk stop` ends it sooner.
LINGER_SECONDS = 60.0
IDLE_CHECK_SECONDS = 0.5  # how often a background desk looks whether anything is left to do
DESK_START_WAIT_SECONDS = 120.0  # how long a command waits for the background desk it launched to come up
DESK_STOP_WAIT_SECONDS = 30.0  # how long `stop` (and `serve` taking over) waits for a desk to let go
# A desk on another host (a PostgreSQL store) counts as running while its latest resource sample is this fresh.
DESK_SEEN_SECONDS = 10.0
FOLLOW_POLL_SECONDS = 0.1  # how often `run` reads its job's counters for the progress bar
FOLLOW_END_POLL_SECONDS = 0.01  # ... and while its job is about to end (short): `run` exits as soon as it is done
FOLLOW_END_WINDOW_SECONDS = 0.5  # "about to end": the end step runs, or the items left end within this, at their pace

# -- failure handling ----------------------------------------------------------------------------------
BATCH_RETRIES = 3  # retries of a failed batch before it is dead (the dead-letter list)
RETRY_BACKOFF = (60.0, 300.0, 600.0)  # seconds before retry 1, 2, 3 (about 1 -> 5 -> 10 minutes)
RETRY_JITTER = 0.2  # each backoff is stretched or shrunk by up to this share, at random
RETRY_CAP_SECONDS = 1800.0  # no backoff is longer than this
BATCH_HARD_TIMEOUT = 3600  # seconds; past it the work-horse is killed and the batch retried
ITEM_SOFT_TIMEOUT = 0  # seconds per item before it fails "timed out" (0: no limit)
CANCEL_GRACE_SECONDS = 10.0  # an item in hand of a cancelled job gets this long to end, then is killed
BREAKER_FAILURE_RATE = 0.5  # a job whose failure rate passes this ...
BREAKER_MIN_ITEMS = 20  # ... after at least this many items pauses itself (the circuit breaker)

# -- health (alerts) -----------------------------------------------------------------------------------
CPU_HIGH = 95.0  # % of CPU used by other programs than our workers above which an alert is raised
HEALTH_READING_SECONDS = 0.5  # `batchdesk health` measures the CPU over this long
RAM_FREE_LOW = 1 * 2**30  # free RAM below which an alert is raised and the pool and batches shrink
IOWAIT_HIGH = 50.0  # % of CPU time waiting for disks above which an alert is raised
DISK_FREE_LOW = 1 * 2**30  # free disk of the data dir below which an alert is raised
REALERT_SECONDS = 60.0  # one alert of a kind at most this often
RESOURCE_WINDOW_SECONDS = 300.0  # the span of resource samples a dashboard shows (the UI's charts)

# -- drop folders --------------------------------------------------------------------------------------
SETTLE_SECONDS = 1.0  # a dropped file is taken once unchanged this long (settle_seconds)
OPEN_LIMIT_SECONDS = 60.0  # a file whose writer's close was never seen is taken once unchanged this long
WATCH_RELOAD_SECONDS = 0.5  # the Watch rows are re-read this often (a `watch add` from another process)
WATCH_HEALTH_SECONDS = 1.0  # each watched folder is checked to be still there this often
WATCH_RETRY_SECONDS = 3.0  # a watch in error is retried this often
WATCH_RESCAN_SECONDS = 300.0  # event-driven watches are rescanned this often (events can be lost)
WATCH_POLL_SECONDS = 1.0  # a --polling watch's polling interval
WATCH_TAKE_PER_TICK = 20_000  # files inserted per watch per desk tick (one transaction); more wait

# -- when a job ends ------------------------------------------------------------------------------------
JOB_END_CHECK_SECONDS = 1.0  # how often the desk looks for jobs that ended (to notify, to run on_done)
JOB_END_WINDOW_SECONDS = 600.0  # how far back it looks (a job's end written late by a worker is still seen)
ON_DONE_TIMEOUT_SECONDS = 60.0  # the on_done command is killed (and an alert raised) after this long
NOTIFY_TIMEOUT_SECONDS = 10.0  # a desktop notification command still running after this long is killed

# -- housekeeping --------------------------------------------------------------------------------------
RETENTION_DAYS = 30  # ended jobs, samples and alerts older than this are forgotten (outputs are kept)
