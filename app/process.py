"""How a cartmem process ends: a long-running worker skips the interpreter's teardown.

When a worker returns, it has committed, closed its database and stopped its threads; what
the interpreter would still do is free every object and run libtorch's static destructors,
which touch library pages that were never resident. Measured on the CPU build of torch
from PyPI: ``python -c "import torch"`` peaks at 656 MB RSS under ``/usr/bin/time -v`` and
at 539 MB when it ends with ``os._exit``; a one-session ingest worker, whose peak was its
exit, peaks 67 MB lower (docs/BENCHMARKS.md, issue 18).
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
import threading

_skip_teardown = False


def skip_teardown_at_exit() -> None:
    """Called by a worker command: end this process without the interpreter's teardown."""
    global _skip_teardown
    _skip_teardown = True


def exit_now_if_asked(code: object) -> None:
    """End the process with ``code`` at once when a worker asked for it and nothing is left
    running: output flushed, logs shut down. Otherwise return (the caller exits normally)."""
    alive = [t for t in threading.enumerate() if t is not threading.main_thread() and not t.daemon]
    if not _skip_teardown or alive or not (code is None or isinstance(code, int)):
        return  # (a message as the code: the interpreter prints it on the way out)
    logging.shutdown()
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(OSError, ValueError):  # a closed pipe: nothing to say on it
            stream.flush()
    os._exit(code or 0)
