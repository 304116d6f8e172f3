"""Which code file is which cell, and what the notebook is called.

IPython compiles each cell to a file name of its own (`/tmp/ipykernel_<pid>/<hash>.py` in a
kernel, `<ipython-input-N-…>` in a terminal) that changes with every kernel. A frame in such a
file is named here by the notebook and the cell's stable identity instead: the frontend's cell
id when it sent one, else a hash of the cell's source.
"""

from __future__ import annotations

import hashlib
import linecache
import os
from collections.abc import Mapping
from typing import Any

from .stacktrace import CellRef

NOTEBOOK_VARIABLES = ("__session__", "__vsc_ipynb_file__")
MAX_CELLS = 10000


def notebook_path(env: Mapping[str, str], user_ns: Mapping[str, Any]) -> str | None:
    """The notebook's path: `JPY_SESSION_NAME`, then `__session__`, then VS Code's variable."""
    candidates: list[Any] = [env.get("JPY_SESSION_NAME")]
    candidates += [user_ns.get(name) for name in NOTEBOOK_VARIABLES]
    for candidate in candidates:
        if isinstance(candidate, str) and candidate.strip():
            return candidate
    return None


def display_notebook(path: str | None, project_root: str | None) -> str | None:
    """The notebook relative to the project root when under it, else its base name."""
    if not path:
        return None
    if project_root:
        root = os.path.realpath(project_root)
        full = os.path.realpath(path)
        if full.startswith(os.path.join(root, "")):
            return os.path.relpath(full, root)
    return os.path.basename(path)


def source_identity(source: str) -> str:
    return hashlib.sha1(source.encode("utf-8", "replace")).hexdigest()[:12]


class CellIndex:
    """Maps a cell's code file to a CellRef, with what the glue recorded as cells ran."""

    def __init__(self, shell: Any, project_root: str | None = None) -> None:
        self._shell = shell
        self.project_root = project_root
        self._cell_ids: dict[int, str] = {}

    def record(self, execution_count: int | None, cell_id: str | None) -> None:
        if execution_count is not None and cell_id:
            if len(self._cell_ids) >= MAX_CELLS:
                self._cell_ids.pop(next(iter(self._cell_ids)))
            self._cell_ids[execution_count] = cell_id

    def notebook(self) -> str | None:
        path = notebook_path(os.environ, getattr(self._shell, "user_ns", {}) or {})
        return display_notebook(path, self.project_root)

    def execution_count_of(self, filename: str) -> int | None:
        compiler = getattr(self._shell, "compile", None)
        mapping = getattr(compiler, "_filename_map", None)
        if isinstance(mapping, dict) and filename in mapping:
            return int(mapping[filename])
        return None

    def __call__(self, filename: str) -> CellRef | None:
        count = self.execution_count_of(filename)
        if count is None:
            return None
        lines = tuple(linecache.getlines(filename))
        identity = self._cell_ids.get(count) or source_identity("".join(lines))
        notebook = self.notebook()
        label = f"{notebook}#cell-{identity}" if notebook else f"cell-{identity}"
        return CellRef(file=label, lines=lines, execution_count=count)
