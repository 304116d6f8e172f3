"""Interrupts around a cell's error: the error an interrupt replaced, and interrupts held off
while that error is reported.

After a cell raised, an interrupt can land while IPython shows the error (the cell then ends
with only the KeyboardInterrupt), or in `post_run_cell`, where the error is reported. Neither
may cost the error's event: the cell's own result on the shell still holds the error, and the
report holds off one interrupt (a second one goes through, should a user's callback hang).
"""

from __future__ import annotations

import signal
import threading
from types import FrameType, TracebackType
from typing import Any


def replaced_error(shell: Any, result: Any, execution_count: int | None) -> BaseException | None:
    """The error cell `execution_count` ended with before an interrupt replaced its result by
    `result` (None: IPython's recovery lost even that). The cell's own result is the shell's
    `last_execution_result`, or, for an interrupt before IPython noted it, the displayhook's
    `exec_result`; either is the cell's when it has the cell's execution count."""
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
    """`with HeldInterrupt():` one SIGINT that arrives inside is taken in instead of raising
    KeyboardInterrupt there; a second one raises as usual. Only on the main thread, where
    Python runs signal handlers, and only over Python's own handler (another one is left to
    do what it does)."""

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
