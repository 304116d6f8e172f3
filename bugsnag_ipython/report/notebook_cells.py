"""The notebook a runner executes, and which of its cells each executed source was.

A runner (nbclient, nbconvert, `jupyter execute`, papermill) sends each code cell's source
and nothing else: no cell id, no notebook path. The notebook file on disk has both (nbformat
4.5 cells carry stable ids), so the kernel's own history of executed sources (`In[1]`,
`In[2]`, ...) is lined up with the file's code cells, in order: a cell's frames are then named
by the same id JupyterLab would send for it, and an edited cell keeps its name.

Read only when an error is reported, never per cell.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from ..core.basics import JsonDict
from .notebook_files import folder_notebooks, parse_json, read_bounded

MAX_NOTEBOOK_BYTES = 20_000_000  # a notebook bigger than this is not read to name cells
MAX_SEARCHED = 50  # notebooks looked at in one folder when nothing names the notebook
MAX_SEARCHED_BYTES = 64_000_000  # ...and at most this much of them read
INJECTED_PARAMETERS = "injected-parameters"  # papermill's tag (and its cell's stable name)


def _normalised(source: Any) -> str:
    if isinstance(source, list):
        text = "".join(part for part in source if isinstance(part, str))
    else:
        text = source if isinstance(source, str) else ""
    return text.rstrip()  # IPython's history drops trailing newlines


@dataclass(frozen=True)
class NotebookFile:
    """A notebook's code cells (source and stable identity, in order) and its metadata."""

    path: str
    cells: tuple[tuple[str, str | None], ...]
    papermill: JsonDict = field(default_factory=dict)  # metadata.papermill, when it ran there

    def sources(self) -> set[str]:
        return {source for source, _ in self.cells}


def read_notebook(path: str, *, follow: bool = True) -> NotebookFile | None:
    """The notebook at `path`, or None when it is not a readable notebook of sane size (see
    `notebook_files` for what is never read). Without `follow`, a link is not opened."""
    raw = read_bounded(path, MAX_NOTEBOOK_BYTES, follow=follow)
    document = parse_json(raw) if raw is not None else None
    if not isinstance(document, dict) or not isinstance(document.get("cells"), list):
        return None
    cells: list[tuple[str, str | None]] = []
    for cell in document["cells"]:
        if not isinstance(cell, dict) or cell.get("cell_type") != "code":
            continue
        # papermill's injected cell gets a new random id every run: its tag is its name.
        identity = INJECTED_PARAMETERS if INJECTED_PARAMETERS in _tags(cell) else cell.get("id")
        cells.append((_normalised(cell.get("source")), identity if isinstance(identity, str) else None))
    metadata = document.get("metadata")
    papermill = metadata.get("papermill") if isinstance(metadata, dict) else None
    return NotebookFile(path, tuple(cells), papermill if isinstance(papermill, dict) else {})


def _tags(cell: JsonDict) -> list[Any]:
    metadata = cell.get("metadata")
    tags = metadata.get("tags") if isinstance(metadata, dict) else None
    return tags if isinstance(tags, list) else []


def best_match(candidates: Iterable[NotebookFile], history: Sequence[str]) -> NotebookFile | None:
    """The notebook most of the executed sources are cells of (ties: the first given)."""
    executed = {_normalised(source) for source in history[1:] if source and source.strip()}
    best, best_score = None, 0
    for notebook in candidates:
        score = len(executed & notebook.sources())
        if score > best_score:
            best, best_score = notebook, score
    return best


def notebooks_in(directory: str, history: Sequence[str]) -> list[str]:
    """The notebooks of one folder whose text holds a line of the code executed last, newest
    first (a runner's output was just written there). A substring test on the raw file, so
    that a folder of large notebooks costs a read each, not a parse. A file that cannot be
    read (see `notebook_files`) is passed over; the others are still looked at."""
    needles = _needles(history)
    if not needles:
        return []
    found, budget = [], MAX_SEARCHED_BYTES
    for entry in folder_notebooks(directory)[:MAX_SEARCHED]:
        if entry.size > min(MAX_NOTEBOOK_BYTES, budget):
            continue
        raw = read_bounded(entry.path, min(MAX_NOTEBOOK_BYTES, budget), follow=False)
        if raw is None:
            continue
        budget -= len(raw)
        if any(needle in raw for needle in needles):
            found.append(entry.path)
    return found


def _needles(history: Sequence[str]) -> set[bytes]:
    """The longest line of the last few executed sources, as a notebook's JSON has it."""
    lines = (line.strip() for source in history[-3:] for line in source.splitlines())
    longest = max(lines, key=len, default="")
    if len(longest) < 4:
        return set()
    return {json.dumps(longest)[1:-1].encode(), json.dumps(longest, ensure_ascii=False)[1:-1].encode()}


class CellMatcher:
    """Lines up the kernel's executed sources with a notebook's code cells.

    Runners execute the code cells in order (skipping empty ones), so each executed source is
    matched with the next cell of that source; a source seen earlier in the notebook (a cell
    run again) falls back to its first cell. Sources in no cell (typed in by other means) get
    no cell id, and their frames keep the source's hash.
    """

    def __init__(self, notebook: NotebookFile) -> None:
        self.notebook = notebook
        self._positions: dict[str, list[int]] = {}
        for position, (source, _) in enumerate(notebook.cells):
            self._positions.setdefault(source, []).append(position)
        self._identities: dict[int, str] = {}
        self._next_count = 1
        self._position = 0

    def cell_id(self, execution_count: int, history: Sequence[str]) -> str | None:
        """The notebook's id of the cell that ran as `In[execution_count]`."""
        last = min(execution_count, len(history) - 1)
        while self._next_count <= last:
            self._line_up(self._next_count, history[self._next_count])
            self._next_count += 1
        return self._identities.get(execution_count)

    def _line_up(self, count: int, source: str) -> None:
        positions = self._positions.get(_normalised(source))
        if not positions:
            return
        position = next((p for p in positions if p >= self._position), positions[0])
        self._position = position + 1
        identity = self.notebook.cells[position][1]
        if identity is not None:
            self._identities[count] = identity
