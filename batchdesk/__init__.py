"""batchdesk: folders of files through a processing step, in batches, on local workers.

Set here, the first of our modules any command imports: when Python got this far, and whether this process
had already run other programs by then. `run` times "the command took" from the process's start, but a
shell runs the last command of ``sh -c 'a && b && batchdesk ...'`` (and ``exec batchdesk``) in its own
process, whose start is the shell's: a process that waited for children before Python started was such a
shell, and its command is timed from here instead (see ``batchdesk.cli.summary.command_began``).
"""

import time as _time

IMPORTED_AT = _time.monotonic()

try:
    import resource as _resource
except ImportError:  # not on Windows: no shell there runs its last command by exec
    RAN_PROGRAMS_BEFORE = False
else:
    _children = _resource.getrusage(_resource.RUSAGE_CHILDREN)
    RAN_PROGRAMS_BEFORE = _children.ru_maxrss > 0 or _children.ru_utime + _children.ru_stime > 0
