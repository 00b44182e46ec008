"""The worker side's tunables, each with what it is for (the desk's are in batchdesk/defaults.py).

A job's own limits (item and batch time limits, rate limits, the circuit breaker) come with the job
from the desk; these are the worker's constants. What the desk and the workers must agree on (queue
names, broker keys) is in :mod:`workers.protocol`.
"""

from __future__ import annotations

# -- the batch runner (workers.runner) --------------------------------------------------------------
# At most this often the loop reads its job's state between items (cancel, pause, the breaker's counts);
# the watch thread beside it checks as often while one item runs long.
CONTROL_CHECK_SECONDS = 0.2
FLUSH_SECONDS = 0.5  # ended items are committed at least this often: progress shows, a kill loses little
FLUSH_ITEMS = 1000  # ... and at the latest after this many (one transaction for the chunk and the job counters)
FIRST_READ_ITEMS = 200  # pending items read by a batch's first query: small, so the first item starts at once
READ_ITEMS = 5000  # pending items read by each later query
# A running batch tells the desk it is alive this often (well below the desk's BATCH_STALE_SECONDS).
HEARTBEAT_SECONDS = 2.0

# -- watch jobs: a file that changed while its task read it (workers.reread) ------------------------
REREAD_ATTEMPTS = 3  # reads in all, the first included, before the item fails "changed while being read"
REREAD_PAUSE_SECONDS = 1.0  # before each new round of reads: time for the writer to finish

# -- tasks (workers.registry) -----------------------------------------------------------------------
# The planner's first guess of a task's cost, for a task that does not declare its own: seconds per item
# plus seconds per byte (it learns the real cost from the first batches).
TASK_COST_PER_ITEM = 0.0005
TASK_COST_PER_BYTE = 2e-9

# -- shared rate limits (workers.throttle) ----------------------------------------------------------
RATE_KEY_SLACK_SECONDS = 5  # a window's counter stays in the broker this long after its window ended

# -- the worker process (workers.worker) ------------------------------------------------------------
BROKER_CONNECT_TIMEOUT_SECONDS = 10  # connecting to the broker gives up after this long
BROKER_HEALTH_CHECK_SECONDS = 30  # a broker connection idle this long is checked before it is used again
FOLLOW_PARENT_POLL_SECONDS = 1.0  # how often a worker started by a desk checks that the desk is still alive
# After its desk died: how long the batch in hand may run on before it is killed with all it started.
FOLLOW_PARENT_GRACE_SECONDS = 60.0
PUBSUB_STOP_SECONDS = 1.0  # at exit: how long to wait for rq's pub/sub thread to end

# -- the worker template (workers.zygote) ------------------------------------------------------------
ZYGOTE_SPAWN_TIMEOUT_SECONDS = 10.0  # the desk waits this long for its template to fork a worker, then spawns one
ZYGOTE_STOP_SECONDS = 5.0  # when the desk stops: how long its template gets to exit before it is killed
POISON_KEEP = 1000  # poison entries kept (newest first): a flood of poison must not fill the broker's memory
SHOWN_CHARS = 200  # characters of a queue entry or a reason shown in a log line, an alert or the poison list
