"""Notebook files, read to name cells: a link loop, a FIFO, gigabytes or hostile JSON is passed over,
unblocked; a folder search follows a link only into the folder."""

from __future__ import annotations

import contextlib
import json
import os
import stat
from collections.abc import Iterable, Sequence
from typing import Any, NamedTuple

from ..core.basics import JsonDict

MAX_NOTEBOOK_BYTES = 20_000_000  # a notebook bigger than this is not read to name cells
MAX_SEARCHED = 50  # notebooks looked at in one folder when nothing names the notebook
MAX_SEARCHED_BYTES = 64_000_000  # ...and at most this much of them read
# One folder search lists this many entries, and examines (one lstat each) this many `.ipynb`.
MAX_LISTED = 100_000
MAX_EXAMINED = 10_000
INJECTED_PARAMETERS = "injected-parameters"  # papermill's tag (and its cell's stable name)

_OPEN_FLAGS = os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0) | getattr(os, "O_BINARY", 0)


def read_bounded(path: str, limit: int, *, follow: bool = True) -> bytes | None:
    """The bytes of the regular file at `path` (a link only with `follow`); None if over `limit` or none."""
    try:
        descriptor = os.open(path, _OPEN_FLAGS | (0 if follow else getattr(os, "O_NOFOLLOW", 0)))
    except (OSError, ValueError):  # ValueError: a NUL in the path
        return None
    try:
        with open(descriptor, "rb") as file:  # closes the descriptor
            facts = os.fstat(descriptor)
            if not stat.S_ISREG(facts.st_mode) or facts.st_size > limit:
                return None
            return file.read(facts.st_size)  # no more than its size, even if it grows meanwhile
    except (OSError, ValueError, MemoryError):
        return None


def folder_notebooks(directory: str) -> list[str]:
    """The `.ipynb` regular files of `directory` (links to one inside it too), newest first, bounded."""
    found: list[tuple[float, str]] = []
    try:
        inside = os.path.join(os.path.realpath(directory), "")
        with os.scandir(directory) as listing:
            for listed, entry in enumerate(listing):
                if listed >= MAX_LISTED or len(found) >= MAX_EXAMINED:
                    break
                if not entry.name.endswith(".ipynb"):
                    continue
                with contextlib.suppress(OSError, ValueError):
                    link = entry.is_symlink()
                    path = os.path.realpath(entry.path) if link else entry.path  # a loop resolves to a link
                    status = os.stat(path, follow_symlinks=False)
                    if stat.S_ISREG(status.st_mode) and (not link or path.startswith(inside)):
                        found.append((status.st_mtime, path))
    except (OSError, ValueError):
        return []
    found.sort(key=lambda notebook: notebook[0], reverse=True)
    return [path for _, path in found]


def _normalised(source: Any) -> str:
    parts = source if isinstance(source, list) else [source]
    return "".join(part for part in parts if isinstance(part, str)).rstrip()  # as IPython's history has it


class NotebookFile(NamedTuple):
    """A notebook's code cells (source and stable identity, in order) and its metadata."""

    path: str
    cells: tuple[tuple[str, str | None], ...]
    papermill: JsonDict  # metadata.papermill, when it ran there


def read_notebook(path: str, *, follow: bool = True) -> NotebookFile | None:
    """The notebook at `path`, or None when it is not a readable notebook of sane size."""
    try:
        document = json.loads(read_bounded(path, MAX_NOTEBOOK_BYTES, follow=follow) or b"null")
    except (RecursionError, ValueError, UnicodeError, MemoryError):  # ValueError: also too many digits
        return None
    if not isinstance(document, dict) or not isinstance(document.get("cells"), list):
        return None
    cells: list[tuple[str, str | None]] = []
    for cell in document["cells"]:
        if not isinstance(cell, dict) or cell.get("cell_type") != "code":
            continue
        metadata = cell.get("metadata")
        tags = metadata.get("tags") if isinstance(metadata, dict) else None
        identity = cell.get("id")
        if isinstance(tags, list) and INJECTED_PARAMETERS in tags:
            identity = INJECTED_PARAMETERS  # papermill's injected cell gets a new id every run
        cells.append((_normalised(cell.get("source")), identity if isinstance(identity, str) else None))
    metadata = document.get("metadata")
    papermill = metadata.get("papermill") if isinstance(metadata, dict) else None
    return NotebookFile(path, tuple(cells), papermill if isinstance(papermill, dict) else {})


def best_match(candidates: Iterable[NotebookFile], history: Sequence[str]) -> NotebookFile | None:
    """The notebook most of the executed sources are cells of (ties: the first given)."""
    executed = {_normalised(source) for source in history[1:] if source and source.strip()}
    best, best_score = None, 0
    for notebook in candidates:
        score = len(executed.intersection(source for source, _ in notebook.cells))
        if score > best_score:
            best, best_score = notebook, score
    return best


def notebooks_in(directory: str, history: Sequence[str]) -> list[str]:
    """The notebooks of one folder, newest first, whose text holds the longest line executed last."""
    lines = (line.strip() for source in history[-3:] for line in source.splitlines())
    longest = max(lines, key=len, default="")
    if len(longest) < 4:
        return []
    # As a notebook's JSON has it, with or without its non-ASCII escaped.
    needles = {json.dumps(longest)[1:-1].encode(), json.dumps(longest, ensure_ascii=False)[1:-1].encode()}
    found, budget = [], MAX_SEARCHED_BYTES
    for path in folder_notebooks(directory)[:MAX_SEARCHED]:
        raw = read_bounded(path, min(MAX_NOTEBOOK_BYTES, budget), follow=False)
        if raw is None:
            continue
        budget -= len(raw)
        if any(needle in raw for needle in needles):
            found.append(path)
    return found

