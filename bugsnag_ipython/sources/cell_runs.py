"""Cell runs: `pre_run_cell` / `post_run_cell`. A running cell is the foreground, the kernel idle
between cells the background; an exception a cell raised is an unhandled event."""

from __future__ import annotations

import contextlib
import os
import time
from typing import TYPE_CHECKING, Any

from ..report.events import CellRun, error_the_cell_ended_with
from . import Source

if TYPE_CHECKING:
    from ..client import Client
    from ..report.cells import CellIndex
    from .crash_record import CrashRecord


class CellRuns(Source):
    def __init__(self, client: Client, shell: Any, cells: CellIndex) -> None:
        super().__init__(client)
        self.shell = shell
        self.cells = cells
        self.crash_record: CrashRecord | None = None  # kernel_deaths.py's, while installed

    def install(self) -> None:
        self.shell.events.register("pre_run_cell", self.pre_run_cell)
        self.shell.events.register("post_run_cell", self.post_run_cell)

    def uninstall(self) -> None:
        for event, callback in (
            ("pre_run_cell", self.pre_run_cell),
            ("post_run_cell", self.post_run_cell),
        ):
            with contextlib.suppress(ValueError):
                self.shell.events.unregister(event, callback)

    def pre_run_cell(self, info: Any) -> None:
        try:
            # IPython counts the cell before pre_run_cell: this cell is `In [count - 1]`.
            count = self.shell.execution_count
            if info.store_history:
                count -= 1
            cell_id = info.cell_id
            if cell_id:
                self.cells.record(count, cell_id)
            # tuple.__new__ rather than CellRun(...): half the cost, and this runs for every cell.
            run = tuple.__new__(CellRun, (count, cell_id, info.raw_cell, time.monotonic()))
            self.client.cell_started(run)
            record = self.crash_record
            if record is not None:
                record.cell_started(run)
        except Exception:
            self.internal_failure("pre_run_cell")

    def post_run_cell(self, result: Any) -> None:
        try:
            client = self.client
            error = result.error_in_exec
            if error is None and result.error_before_exec is not None:
                before = result.error_before_exec
                error = before if isinstance(before, SyntaxError) else None
            if error is not None:
                # An interrupt while IPython showed the error ends the cell with it: report the error.
                error = error_the_cell_ended_with(error, self._is_users_code)
            if error is not None and client.should_report(error):
                client.notify(error, unhandled=True, cell=client.cell)
            client.cell_finished(error)
            record = self.crash_record
            if record is not None:
                record.cell_finished()
        except Exception:
            self.internal_failure("post_run_cell")

    def _is_users_code(self, filename: str) -> bool:
        """A cell's code, or a file under the project root (a script run with %run, say)."""
        if self.cells(filename) is not None:
            return True
        root = self.client.config.project_root
        if not root or filename.startswith("<"):
            return False
        return os.path.realpath(filename).startswith(os.path.join(os.path.realpath(root), ""))
