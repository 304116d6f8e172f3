"""Thread exceptions: `threading.excepthook`, chained. An exception that ends a thread is an
unhandled event of the session current as it leaves the thread."""

from __future__ import annotations

import threading
from typing import Any

from ..report.events import ThreadInfo
from . import Source


class ThreadExceptions(Source):
    _previous: Any = None

    def install(self) -> None:
        self._previous = threading.excepthook
        threading.excepthook = self.thread_exception

    def uninstall(self) -> None:
        if threading.excepthook == self.thread_exception:
            threading.excepthook = self._previous

    def thread_exception(self, args: Any) -> None:
        try:
            error = args.exc_value
            if error is not None and self.client.should_report(error):
                info, thread = ThreadInfo("unknown", None, False), args.thread
                if thread is not None:  # None where the thread is gone already
                    info = ThreadInfo(thread.name, thread.ident, thread.daemon)
                self.client.notify_thread_exception(error, info)
        except Exception:
            self.internal_failure("threading.excepthook")
        # The default printing (or whoever hooked before us) still happens.
        (self._previous or threading.__excepthook__)(args)
