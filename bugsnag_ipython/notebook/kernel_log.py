"""Where the extension's own log lines go: the kernel's log, never a user's cell.

ipykernel 7 forwards what arrives on file descriptor 2 to the running cell, so the handler here
writes to the original descriptor ipykernel keeps aside for its own log (else to stderr).
"""

from __future__ import annotations

import io
import logging
import os
import sys
from typing import IO

from ..core.basics import log

HANDLER_NAME = "bugsnag_ipython kernel log"  # one such handler per process, found again on reload


def kernel_log_stream() -> IO[str] | None:
    """A text stream on the kernel's own log, else on stderr; None if neither can be written."""
    kept = getattr(sys.stderr, "_original_stdstream_copy", None)
    if isinstance(kept, int):
        try:
            # A duplicate: ipykernel closes its copy when it restores the streams at exit.
            return io.TextIOWrapper(
                io.FileIO(os.dup(kept), "w"), encoding="utf-8", errors="backslashreplace",
                line_buffering=True,
            )
        except OSError:
            return None
    return sys.__stderr__


def install() -> None:
    """Route the extension's logger to the kernel log only: the root logger's handlers (a
    `logging.basicConfig()` in a notebook) write into the cell."""
    if not any(handler.get_name() == HANDLER_NAME for handler in log.handlers):
        handler = logging.StreamHandler(kernel_log_stream() or io.StringIO())
        handler.set_name(HANDLER_NAME)
        handler.setFormatter(logging.Formatter("[bugsnag_ipython] %(message)s"))
        log.addHandler(handler)
    log.setLevel(logging.INFO)
    log.propagate = False
