"""Which code file is which cell (its stable id: the frontend's, a runner's notebook's, a source hash)."""

from __future__ import annotations

import linecache
import os
import re
from collections.abc import Mapping
from functools import lru_cache
from typing import TYPE_CHECKING, Any, NamedTuple

if TYPE_CHECKING:
    from collections.abc import Sequence

    from .run import HeadlessRun

NOTEBOOK_VARIABLES = ("__session__", "__vsc_ipynb_file__")
MAX_CELLS = 10000


class CellRef(NamedTuple):
    """What a code file of a cell stands for."""

    identity: str  # the frontend's cell id, else a hash of the cell's source
    lines: tuple[str, ...]  # the cell's source, as run
    execution_count: int | None = None


class NotebookRef(NamedTuple):
    """The notebook of this kernel, as frames and metadata name it."""

    path: str  # relative to the project root when under it, else the base name
    directory: str  # its real directory: files there are the user's own code


def cell_file(notebook: NotebookRef | None, cell: CellRef) -> str:
    """The `file` of a cell's frames, e.g. `analysis.ipynb#cell-3f2a9c`."""
    return f"{notebook.path}#cell-{cell.identity}" if notebook else f"cell-{cell.identity}"


_CELL_FILE = re.compile(r"(ipykernel_\d+[/\\]\d+\.py$)|(^<ipython-input-\d+-[0-9a-f]+>$)")


def is_cell_file(filename: str) -> bool:
    """Whether IPython named the file for a cell, in this shell or another."""
    return _CELL_FILE.search(filename) is not None


def notebook_path(env: Mapping[str, str], user_ns: Mapping[str, Any]) -> str | None:
    """The notebook's path: `JPY_SESSION_NAME`, then `__session__`, then VS Code's variable."""
    for candidate in (env.get("JPY_SESSION_NAME"), *(user_ns.get(name) for name in NOTEBOOK_VARIABLES)):
        if isinstance(candidate, str) and candidate.strip():
            return candidate.strip()
    return None


@lru_cache(maxsize=64)
def notebook_ref(path: str | None, project_root: str | None) -> NotebookRef | None:
    """The notebook relative to the project root when under it, else its base name (cached)."""
    if not path:
        return None
    full = os.path.realpath(os.path.join(project_root or os.getcwd(), path))
    shown = os.path.basename(full) or path
    if project_root:
        root = os.path.realpath(project_root)
        if full.startswith(os.path.join(root, "")):
            shown = os.path.relpath(full, root).replace(os.sep, "/")
    return NotebookRef(path=shown, directory=os.path.dirname(full))


def source_identity(source: str) -> str:
    """A short, stable name for a cell's source (for frontends that send no cell id)."""
    import hashlib  # here, not at load: only a report needs it

    return hashlib.sha1(source.encode("utf-8", "replace")).hexdigest()[:12]


class CellMap:
    """Which code file is which cell, and where the notebook is: none, outside a kernel."""

    def __call__(self, filename: str) -> CellRef | None:
        return None

    def notebook_path(self) -> str | None:
        return None

    def cell_id(self, execution_count: int) -> str | None:
        return None


class CellIndex(CellMap):
    """A cell's code file as a CellRef; without `look`, a headless run's notebook is not looked for."""

    def __init__(self, shell: Any, run: HeadlessRun | None = None) -> None:
        self._shell = shell
        self.run = run  # a runner executing the notebook without a frontend, if it may be one
        self._cell_ids: dict[int, str] = {}

    def record(self, execution_count: int, cell_id: str) -> None:
        """What pre_run_cell saw: the frontend's id of the cell about to run as `In [n]`."""
        if len(self._cell_ids) >= MAX_CELLS:
            self._cell_ids.pop(next(iter(self._cell_ids)))
        self._cell_ids[execution_count] = cell_id

    def notebook_path(self, *, look: bool = True) -> str | None:
        run = self._headless(look)
        if run is not None:
            return run.notebook_path(self.history())
        return notebook_path(os.environ, getattr(self._shell, "user_ns", None) or {})

    def _headless(self, look: bool = True) -> HeadlessRun | None:
        """The run, unless a frontend showed itself (a cell id, a notebook variable of its own)."""
        run = self.run
        if run is None or self._cell_ids or not (look or run.resolved):
            return None
        if run.outranks_frontend:
            return run
        user_ns = getattr(self._shell, "user_ns", None) or {}
        return None if any(user_ns.get(name) for name in NOTEBOOK_VARIABLES) else run

    def history(self) -> Sequence[str]:
        """The sources this kernel executed, `In[0]` (empty) first, as they were sent."""
        raw = getattr(getattr(self._shell, "history_manager", None), "input_hist_raw", None)
        return raw if isinstance(raw, list) else []

    def run_tab(self) -> dict[str, Any] | None:
        run = self._headless()
        return run.tab(self.history()) if run is not None else None

    def cell_id(self, execution_count: int, *, look: bool = True) -> str | None:
        """The id of the cell that ran as `In [n]`: the frontend's, else a headless run's notebook's."""
        run = self._headless(look)
        if run is None:
            return self._cell_ids.get(execution_count)
        return run.cell_id(execution_count, self.history())

    def __call__(self, filename: str, *, look: bool = True) -> CellRef | None:
        mapping = getattr(getattr(self._shell, "compile", None), "_filename_map", None)
        count = mapping.get(filename) if isinstance(mapping, dict) else None
        if not isinstance(count, int):
            count = None
            if not is_cell_file(filename):
                return None
        cell_id = self.cell_id(count, look=look) if count is not None else None
        lines = tuple(linecache.getlines(filename))
        return CellRef(cell_id or source_identity("".join(lines)), lines, count)
