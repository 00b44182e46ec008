"""``python -m batchdesk`` and the frozen executable's entry point."""

import multiprocessing

if __name__ == "__main__":
    multiprocessing.freeze_support()  # must run first in a frozen program
    import os
    import sys

    # Where module:function plugins live; a frozen program ignores PYTHONPATH, and workers inherit this.
    sys.path.extend(p for p in os.environ.get("BATCHDESK_PLUGIN_PATH", "").split(os.pathsep) if p)
    from batchdesk.cli import main

    main()
