"""The naive baseline's job function: one RQ job per file (what batchdesk's batching avoids).

Enqueued by ``bench/bench_throughput.py`` and run by stock ``rq worker --burst`` processes.
"""

from __future__ import annotations

import hashlib


def sha256_file(path: str) -> str:
    """sha256 of one whole file: the same work the Pool baseline and the checksum task do."""
    with open(path, "rb") as fh:
        return hashlib.sha256(fh.read()).hexdigest()
