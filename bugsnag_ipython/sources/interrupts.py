"""Interrupts around a cell's error: an interrupt that lands while IPython shows the error, or
while it is reported, must not cost the error's event. The cell's own result on the shell still
holds the error, and the report holds off one interrupt (a second one goes through)."""

from __future__ import annotations

import signal
import threading
from types import FrameType, TracebackType
from typing import Any


def replaced_error(shell: Any, result: Any, execution_count: int | None) -> BaseException | None:
    """The error cell `execution_count` ended with before an interrupt replaced its result by
    `result`: the cell's own result is the shell's last one, or, not noted yet, the displayhook's."""
    if execution_count is None:
        return None
    found = (getattr(shell, "last_execution_result", None),
             getattr(getattr(shell, "displayhook", None), "exec_result", None))
    for own in found:
        if own is None or own is result or getattr(own, "execution_count", None) != execution_count:
            continue
        error = getattr(own, "error_in_exec", None)
        if isinstance(error, BaseException) and not isinstance(error, KeyboardInterrupt):
            return error
    return None


class HeldInterrupt:
    """`with HeldInterrupt():` one SIGINT inside is taken in, a second raises as usual. Only on the
    main thread and over Python's own handler (another one is left to do what it does)."""

    def __init__(self) -> None:
        self._previous: Any = None
        self.interrupted = False

    def __enter__(self) -> HeldInterrupt:
        if threading.current_thread() is threading.main_thread():
            try:
                if signal.getsignal(signal.SIGINT) is signal.default_int_handler:
                    self._previous = signal.signal(signal.SIGINT, self._hold)
            except (ValueError, OSError):
                self._previous = None
        return self

    def _hold(self, signum: int, frame: FrameType | None) -> None:
        self.interrupted = True
        signal.signal(signal.SIGINT, self._previous)

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 tb: TracebackType | None) -> None:
        if self._previous is not None:
            try:
                if signal.getsignal(signal.SIGINT) == self._hold:
                    signal.signal(signal.SIGINT, self._previous)
            except (ValueError, OSError):
                pass
            self._previous = None
