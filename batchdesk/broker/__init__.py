"""Where the RQ queues live: the broker modes (embedded, managed, external)."""
