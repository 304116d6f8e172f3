"""A lock that `os.fork()` waits for: background threads hold it around work a fork must not
cut in half.

A child forked while another thread is in the middle of an import inherits that import's module
lock with no thread left to release it, and hangs the first time it imports the same module; a
child forked while another thread holds one of the client's locks (the breadcrumbs', the
metadata's, the session tracker's) hangs the first time it reports. Notebooks fork
(multiprocessing), and this package imports lazily on its own threads (the sender's `requests`,
the outbox, platformdirs) and reads the client's state on one (the crash record's checkpoint),
so that work runs under this lock, and a fork waits the few milliseconds until it is done.
"""

from __future__ import annotations

import contextlib
import os
import threading
import weakref
from typing import Any

no_fork = threading.Lock()

if hasattr(os, "register_at_fork"):  # POSIX; Windows has no fork
    os.register_at_fork(
        before=no_fork.acquire,
        after_in_parent=no_fork.release,
        after_in_child=no_fork.release,
    )


class ForgottenInChildren:
    """Objects that hold the parent's resources (a lock on a file, a pipe): in a forked child,
    each is told to let go of them (`forget_after_fork()`), so that a child that outlives its
    parent never keeps them held."""

    def __init__(self) -> None:
        self._live: weakref.WeakSet[Any] = weakref.WeakSet()
        self._registered = False

    def add(self, holder: Any) -> None:
        self._live.add(holder)
        if not self._registered and hasattr(os, "register_at_fork"):
            self._registered = True
            os.register_at_fork(after_in_child=self._forget)

    def discard(self, holder: Any) -> None:
        self._live.discard(holder)

    def _forget(self) -> None:
        for holder in list(self._live):
            with contextlib.suppress(Exception):
                holder.forget_after_fork()
        self._live.clear()
