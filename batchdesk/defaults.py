"""Named defaults, in one place, so the CLI help, the config docs and the code agree."""

from __future__ import annotations

BROKER_MODE = "auto"
QUEUES = ("high", "default", "low")  # workers drain them in this order
DEFAULT_QUEUE = "default"

# Batches: aim for this much work per batch, learned from measured item times.
BATCH_TARGET_SECONDS = 2.0
BATCH_MIN_ITEMS = 1
BATCH_MAX_ITEMS = 50000
BATCH_MAX_BYTES = 2 * 1024 * 1024 * 1024  # and at most 1/8 of free RAM per worker
# Batches kept queued ahead of the workers, per worker, so no worker waits for the feeder.
QUEUE_AHEAD_PER_WORKER = 2

# Worker processes
MAX_WORKERS = 32
WORKER_RAM_BUDGET = 200 * 1024 * 1024  # free RAM each worker should have before we add one
WORKER_NICE = 10  # workers run at this niceness (0: as the desk), below the user's own programs

# Result flushing and batch heartbeats are the workers' own (workers.runner: FLUSH_*, HEARTBEAT_SECONDS).

# A background desk (started by `run`, `resume` or `submit`) lingers this long after its last job,
# so the next command finds warm workers; `batchdesk stop` ends it sooner.
LINGER_SECONDS = 60.0

# Liveness
BATCH_STALE_SECONDS = 30.0  # a running batch with no heartbeat for this long is re-queued
DESK_TICK_SECONDS = 0.2

# Failure handling
BATCH_RETRIES = 3
RETRY_BACKOFF = (60.0, 300.0, 600.0)  # about 1 -> 5 -> 10 minutes, with jitter
RETRY_JITTER = 0.2
RETRY_CAP_SECONDS = 1800.0
BATCH_HARD_TIMEOUT = 3600  # seconds; the work-horse is killed and the batch retried
ITEM_SOFT_TIMEOUT = 0  # seconds; 0 = no per-item limit
CANCEL_GRACE_SECONDS = 10.0
# Circuit breaker: a job whose failure rate passes this after at least this many items pauses itself.
BREAKER_FAILURE_RATE = 0.5
BREAKER_MIN_ITEMS = 20

# Housekeeping
RETENTION_DAYS = 30
MONITOR_INTERVAL = 2.0
