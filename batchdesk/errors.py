"""One error base class: every message tells the user what to do next."""

from __future__ import annotations


class BatchdeskError(Exception):
    """A user-facing error: the CLI prints its message on one line and exits non-zero."""

    exit_code = 2
