"""The terminal UI's tunables, in one place: how often it reads the store, how much it reads at a
time, and when it calls a reading old. Layout widths live with the widgets they shape."""

from __future__ import annotations

from batchdesk.defaults import MONITOR_SECONDS

POLL_SECONDS = 1.0  # between dashboard (and job detail) refreshes; each runs in a thread, never overlapping
FAILED_PAGE = 500  # failed items the job detail lists at once (the count says when there are more)
SERIES_EVERY = 5.0  # seconds between throughput-series reads while a job runs (they read item rows)
SERIES_BUCKETS = 60  # points in the job detail's throughput sparkline
RESOURCES_STALE_SECONDS = 5 * MONITOR_SECONDS  # resource samples older than this read "stale" (no desk sampling)
NOTIFY_SECONDS = 5.0  # how long an action's notification stays up
NOTIFY_LONG_SECONDS = 8.0  # ... when it carries a path to read (a report written)
NOTIFY_ERROR_SECONDS = 10.0  # ... when the desk could not start
BROKER_CONNECT_TIMEOUT = 1.0  # seconds to reach the broker for the queues panel before calling it unreachable
BROKER_READ_TIMEOUT = 2.0  # seconds for one queue-depth read
NOTIFY_STOPPING_SECONDS = 30.0  # ... while the desk stops on quit (workers finish the item in hand)
PRESELECTED_TASK = "checksum"  # the task the new-job and new-watch dialogs start with (when it is installed)
