"""The ``batchdesk`` command line (click): ``batchdesk.cli:main`` is the console entry point."""

from batchdesk.cli.commands import main

__all__ = ["main"]
