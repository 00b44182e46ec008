"""``python -m batchdesk`` and the frozen executable's entry point."""

import multiprocessing

if __name__ == "__main__":
    multiprocessing.freeze_support()  # must run first in a frozen program
    from batchdesk.cli import main

    main()
