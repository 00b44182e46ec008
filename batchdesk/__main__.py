"""``python -m batchdesk`` and the frozen executable's entry point."""

import sys

if __name__ == "__main__":
    if getattr(sys, "frozen", False):  # only there: importing multiprocessing costs every command ~10 ms
        import multiprocessing

        multiprocessing.freeze_support()  # must run first in a frozen program
    import os

    # Where module:function plugins live; a frozen program ignores PYTHONPATH, and workers inherit this.
    sys.path.extend(p for p in os.environ.get("BATCHDESK_PLUGIN_PATH", "").split(os.pathsep) if p)
    from batchdesk.cli import main

    main()
