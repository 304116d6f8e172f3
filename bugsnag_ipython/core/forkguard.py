"""A lock that `os.fork()` waits for: background threads hold it around work a fork must not cut
in half. A child forked while another thread holds an import's lock or one of the client's
inherits it held, with no thread to release it, and hangs; notebooks fork (multiprocessing)."""

import contextlib
import os
import threading
import weakref
from typing import Any

no_fork = threading.Lock()
forked = False  # this process is a fork of the one the extension was loaded in


def _in_child() -> None:
    global forked
    forked = True
    no_fork.release()


if hasattr(os, "register_at_fork"):  # POSIX; Windows has no fork
    os.register_at_fork(
        before=no_fork.acquire,
        after_in_parent=no_fork.release,
        after_in_child=_in_child,
    )


class ForgottenInChildren(weakref.WeakSet[Any]):
    """Objects holding the parent's resources (a lock, a pipe), told `forget_after_fork()` in a child."""

    def __init__(self) -> None:
        super().__init__()
        if hasattr(os, "register_at_fork"):
            os.register_at_fork(after_in_child=self._forget)

    def _forget(self) -> None:
        for holder in list(self):
            with contextlib.suppress(Exception):
                holder.forget_after_fork()
        self.clear()
