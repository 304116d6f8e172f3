"""A lock that `os.fork()` waits for: background threads hold it while they import.

A child forked while another thread is in the middle of an import inherits that import's module
lock with no thread left to release it, and hangs the first time it imports the same module.
Notebooks fork (multiprocessing), and this package imports lazily on its own threads (the
sender's `requests`, the outbox, platformdirs), so those imports run under this lock, and a fork
waits the few milliseconds until they are done.
"""

from __future__ import annotations

import os
import threading

importing = threading.Lock()

if hasattr(os, "register_at_fork"):  # POSIX; Windows has no fork
    os.register_at_fork(
        before=importing.acquire,
        after_in_parent=importing.release,
        after_in_child=importing.release,
    )
