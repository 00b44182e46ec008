"""The ``batchdesk`` command line (click): ``batchdesk.cli:main`` is the console entry point."""

from batchdesk.cli.main import main

__all__ = ["main"]
