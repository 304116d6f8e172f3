"""Headless runs: a notebook runner or a Voilà dashboard, with no frontend to send cell ids."""

from __future__ import annotations

import os
import threading
from collections.abc import Mapping, Sequence
from datetime import datetime
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, NamedTuple

from ..core.basics import JsonDict, log
from ..core.config import without_credentials
from .payloads import iso8601, strings_replaced

if TYPE_CHECKING:
    from .notebook_files import NotebookFile

PAPERMILL = "papermill"
NBCLIENT = "nbclient"
VOILA = "voila"


class RunnerCommand(NamedTuple):
    """What a runner's command line says about the run."""

    runner: str
    notebooks: tuple[str, ...]  # absolute paths of the notebooks it runs, in order
    output_path: str | None = None  # where the executed notebook goes (single notebook)
    parameters: Mapping[str, Any] = MappingProxyType({})  # papermill -p / -r, as text


def resolved_path(path: str, cwd: str) -> str:
    """`path` from `cwd`; a URL (s3://, https://, papermill reads and writes them itself) or `-` as given."""
    if remote(path) or path == "-":
        return path
    return os.path.normpath(os.path.join(cwd, path))


def remote(path: str) -> bool:
    return "://" in path


class HeadlessRun:
    """What the kernel knows of its run (thread-safe): the runner, its notebook, the cell of each source."""

    def __init__(self, command: RunnerCommand | None, kernel_cwd: str, started_at: float, *,
                 inherited_frontend: bool = False) -> None:
        self.command = command
        self.inherited_frontend = inherited_frontend
        self.kernel_cwd = kernel_cwd
        self.started_at = started_at
        self.resolved = False  # the run's notebook was looked for (found or not)
        self._lock = threading.Lock()
        self._notebook: NotebookFile | None = None
        self._positions: dict[str, list[int]] = {}  # a cell's source -> its positions among the cells
        self._cell_ids: dict[int, str] = {}  # execution count -> the notebook's cell id
        self._next_count = 1  # the next executed source to match...
        self._next_cell = 0  # ...with a cell from this position on

    @property
    def outranks_frontend(self) -> bool:
        """A frontend's notebook variables came with the environment: a runner or kernel started this one."""
        return self.command is not None or self.inherited_frontend

    @property
    def known_at_launch(self) -> bool:
        """The command line named the runner (a dashboard is a person's visit, no run)."""
        return self.command is not None and not self.dashboard

    @property
    def dashboard(self) -> bool:
        return self.command is not None and self.command.runner == VOILA

    def project_root(self) -> str | None:
        """papermill's input's folder (papermill does not start the kernel there, JupyterLab does)."""
        command = self.command
        if command is not None and command.runner == PAPERMILL and not remote(command.notebooks[0]):
            return os.path.dirname(command.notebooks[0])
        return None

    def _resolve(self, history: Sequence[str]) -> None:
        # Looked for once, once a cell ran: before, no executed source can be matched with a cell.
        with self._lock:
            if self.resolved or len(history) <= 1:
                return
            self.resolved = True
            try:  # files that are no notebook are passed over; anything else names nothing either
                self._notebook = notebook = self._find(history)
            except Exception as error:
                log.warning("The notebook of this run could not be read (%s); its cells are "
                            "named by their source.", error)
                return
            for position, (source, _) in enumerate(notebook.cells if notebook is not None else ()):
                self._positions.setdefault(source, []).append(position)

    def _find(self, history: Sequence[str]) -> NotebookFile | None:
        from .notebook_files import best_match, notebooks_in, read_notebook

        command = self.command
        if command is None or not command.notebooks:
            # The folder search resolves links (to files inside the folder): none is followed.
            found = [read_notebook(path, follow=False) for path in notebooks_in(self.kernel_cwd, history)]
        else:
            # papermill writes its output (parameters injected, ids kept) before the kernel starts.
            paths = command.notebooks
            if command.runner == PAPERMILL:
                paths = (command.output_path or "", command.notebooks[0])
            found = [read_notebook(path) for path in paths if path and path != "-" and not remote(path)]
        notebook = best_match([nb for nb in found if nb is not None], history)
        if notebook is not None and command is None and notebook.papermill:
            # papermill called from Python: its output, in the kernel's folder, says the rest.
            given = notebook.papermill
            self.command = RunnerCommand(
                PAPERMILL,
                (resolved_path(str(given.get("input_path") or notebook.path), self.kernel_cwd),),
                resolved_path(str(given.get("output_path") or notebook.path), self.kernel_cwd),
            )
        return notebook

    def notebook_path(self, history: Sequence[str]) -> str | None:
        """The notebook a person would open: the runner's input, else the one found by its cells."""
        self._resolve(history)
        command = self.command
        if command is not None and len(command.notebooks) == 1:
            given = command.notebooks[0]
            # papermill's s3://bucket/jobs/a.ipynb is a.ipynb, as JupyterLab names one in its folder.
            return given.rsplit("/", 1)[-1] if remote(given) else given
        return self._notebook.path if self._notebook is not None else None

    def cell_id(self, execution_count: int, history: Sequence[str]) -> str | None:
        """The notebook's id of the cell that ran as `In[execution_count]`: runners execute the cells in
        order (skipping empty ones), each source is the next cell of that source, else the first."""
        self._resolve(history)
        with self._lock:
            while self._notebook is not None and self._next_count <= min(execution_count, len(history) - 1):
                positions = self._positions.get(history[self._next_count].rstrip())  # as a cell's source
                if positions:
                    position = next((p for p in positions if p >= self._next_cell), positions[0])
                    self._next_cell = position + 1
                    identity = self._notebook.cells[position][1]
                    if identity is not None:
                        self._cell_ids[self._next_count] = identity
                self._next_count += 1
            return self._cell_ids.get(execution_count)

    def tab(self, history: Sequence[str]) -> JsonDict | None:
        """The event's `run` tab: the runner, its notebooks, papermill's parameters, the start."""
        if self.dashboard:
            return None
        self._resolve(history)
        command, notebook = self.command, self._notebook
        if command is None and notebook is not None:
            command = RunnerCommand(NBCLIENT, (notebook.path,))
        if command is None:
            return None  # no run, as far as can be told
        papermill = notebook.papermill if notebook is not None else {}
        notebooks = command.notebooks
        tab: JsonDict = {"runner": command.runner,
                         "inputPath": notebooks[0] if len(notebooks) == 1 else list(notebooks)}
        if command.output_path:
            tab["outputPath"] = command.output_path
        if command.runner == PAPERMILL:
            given = papermill.get("parameters")
            tab["parameters"] = dict(given) if isinstance(given, Mapping) else dict(command.parameters)
        try:  # papermill's start, ISO 8601 with an offset
            tab["startedAt"] = iso8601(datetime.fromisoformat(str(papermill["start_time"])).timestamp())
        except (KeyError, ValueError):
            tab["startedAt"] = iso8601(self.started_at)
        # Parameters and paths are often connection URLs: sent without their credentials.
        cleaned: JsonDict = strings_replaced(tab, without_credentials)
        return cleaned
