"""Cell runs: `pre_run_cell` / `post_run_cell`. A running cell is the foreground, the kernel idle
between cells the background; an exception a cell raised is an unhandled event. An interrupt while
IPython shows or reports the error does not cost its event: the shell's result still holds it, and
the report holds off one interrupt (a second one goes through)."""

from __future__ import annotations

import contextlib
import os
import signal
import threading
import time
from types import FrameType
from typing import TYPE_CHECKING, Any

from ..report.events import CellRun, error_the_cell_ended_with
from . import Source

if TYPE_CHECKING:
    from ..client import Client
    from ..deaths.record import CrashRecord
    from ..report.cells import CellIndex


class CellRuns(Source):
    """The shell's cell events: each cell run's start, end and the error it ended with."""

    def __init__(self, client: Client, shell: Any, cells: CellIndex) -> None:
        super().__init__(client)
        self.shell = shell
        self.cells = cells
        inputs = getattr(getattr(shell, "history_manager", None), "input_hist_raw", None)
        self._inputs: list[str] | None = inputs if isinstance(inputs, list) else None
        # The execute request being handled (ipykernel >= 6), for its cell id.
        self._request: Any = getattr(getattr(shell, "kernel", None), "get_parent", None)
        self.crash_record: CrashRecord | None = None  # kernel_deaths.py's, while installed

    def install(self) -> None:
        self.shell.events.register("pre_run_cell", self.pre_run_cell)
        self.shell.events.register("post_run_cell", self.post_run_cell)

    def uninstall(self) -> None:
        for event, callback in (("pre_run_cell", self.pre_run_cell), ("post_run_cell", self.post_run_cell)):
            with contextlib.suppress(ValueError):  # taken out by another hand: `%unload_ext` still works
                self.shell.events.unregister(event, callback)

    def pre_run_cell(self, info: Any) -> None:
        try:
            if info.store_history:
                # This cell is `In`'s next entry: recent IPython (9.18) counts the cell before
                # pre_run_cell, 9.0 after it; both store its input after it.
                inputs = self._inputs
                count = len(inputs) if inputs is not None else self.shell.execution_count - 1
            else:
                count = self.shell.execution_count
            cell_id = info.cell_id or (self._requested_cell_id(info) if self._request else None)
            if cell_id:
                self.cells.record(count, cell_id)
            source, started = info.raw_cell, time.monotonic()
            run = CellRun(count, cell_id, source, started)
            self.client.cell_started(run)
            record = self.crash_record  # set by another thread: read once
            if record is not None:
                try:  # the record's own store, without a frame around it: the per-cell target needs it
                    record.store_cell(count, started, cell_id.encode() if cell_id else b"", source.encode())
                except UnicodeEncodeError:  # a lone surrogate, which the record's own encoding keeps
                    record.cell_started(run)
        except Exception:
            self.internal_failure("pre_run_cell")

    def _requested_cell_id(self, info: Any) -> str | None:
        """The execute request's `cellId`, where ipykernel does not pass it to `pre_run_cell`;
        only for the request's own code, not a `run_cell` that code calls."""
        request = self._request("shell")  # the cell runs on the shell channel
        # A frontend's message, not ours: a part of another shape names no cell, and must not
        # cost the cell its start.
        metadata, content = request.get("metadata"), request.get("content")
        cell_id = metadata.get("cellId") if isinstance(metadata, dict) else None
        if not (isinstance(cell_id, str) and cell_id and isinstance(content, dict)):
            return None
        return cell_id if content.get("code") == info.raw_cell else None

    def post_run_cell(self, result: Any) -> None:
        try:
            try:
                error = result.error_in_exec
            except AttributeError:  # no result: an interrupt met IPython's recovery from one
                error = KeyboardInterrupt()
            if error is None and isinstance(result.error_before_exec, SyntaxError):
                error = result.error_before_exec
            if error is not None:
                error = self._report(result, error)
            self.client.cell_finished(error)
            record = self.crash_record
            if record is not None:
                record.cell_finished()
        except Exception:
            self.internal_failure("post_run_cell")

    def _report(self, result: Any, error: BaseException) -> BaseException:
        with HeldInterrupt():
            # An interrupt while IPython showed the error ends the cell with it: report the error.
            error = error_the_cell_ended_with(error, self._is_users_code)
            if isinstance(error, KeyboardInterrupt):  # or one that came after the error was shown
                run = self.client.cell
                error = replaced_error(self.shell, result, run and run.execution_count) or error
            if self.client.should_report(error):
                self.client.notify(error, unhandled=True)  # the running cell's
        return error

    def _is_users_code(self, filename: str) -> bool:
        # A cell's code, or a file under the project root (a script run with %run, say).
        if self.cells(filename) is not None:
            return True
        root = self.client.config.project_root
        if not root or filename.startswith("<"):
            return False
        return os.path.realpath(filename).startswith(os.path.join(os.path.realpath(root), ""))


def replaced_error(shell: Any, result: Any, execution_count: int | None) -> BaseException | None:
    """The error cell `execution_count` ended with before an interrupt replaced its result by
    `result`: the cell's own result is the shell's last one, or, not noted yet, the displayhook's."""
    if execution_count is None:
        return None
    for own in (getattr(shell, "last_execution_result", None),
                getattr(getattr(shell, "displayhook", None), "exec_result", None)):
        error = getattr(own, "error_in_exec", None)
        if (own is not result and getattr(own, "execution_count", None) == execution_count
                and isinstance(error, BaseException) and not isinstance(error, KeyboardInterrupt)):
            return error
    return None


class HeldInterrupt:
    """`with HeldInterrupt():` one SIGINT inside is taken in, a second raises as usual. Only on the
    main thread and over Python's own handler (another one is left to do what it does)."""

    interrupted = False  # whether the one SIGINT came

    def __enter__(self) -> HeldInterrupt:
        if (threading.current_thread() is threading.main_thread()
                and signal.getsignal(signal.SIGINT) is signal.default_int_handler):
            signal.signal(signal.SIGINT, self._hold)
        return self

    def _hold(self, signum: int, frame: FrameType | None) -> None:
        self.interrupted = True
        signal.signal(signal.SIGINT, signal.default_int_handler)

    def __exit__(self, *exc: object) -> None:
        if signal.getsignal(signal.SIGINT) == self._hold:
            signal.signal(signal.SIGINT, signal.default_int_handler)
