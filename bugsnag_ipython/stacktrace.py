"""Exceptions as BugSnag `exceptions[]` entries, with frames that point into notebook cells.

A frame of a cell is named by the notebook and the cell's stable identity (never the kernel's
temp path or execution count), so that the same failure groups the same way in every kernel.
The glue supplies a `CellResolver` that knows which code file is which cell.
"""

from __future__ import annotations

import linecache
import os
import sys
import sysconfig
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from types import TracebackType
from typing import Any

JsonDict = dict[str, Any]
CODE_WINDOW = 7  # lines around the frame's line, as the official notifiers send
MAX_CHAIN = 16  # causes/contexts/group members followed for one event


@dataclass(frozen=True)
class CellRef:
    """What a code file of a cell stands for."""

    file: str  # e.g. "analysis.ipynb#cell-3f2a9c" (notebook and stable cell identity)
    lines: tuple[str, ...]  # the cell's source, as run
    execution_count: int | None = None


CellResolver = Callable[[str], CellRef | None]


def _library_roots() -> tuple[str, ...]:
    roots = {sysconfig.get_paths()[key] for key in ("stdlib", "platstdlib", "purelib", "platlib")}
    roots.update(p for p in sys.path if "site-packages" in p or "dist-packages" in p)
    return tuple(sorted(os.path.join(os.path.realpath(r), "") for r in roots if r))


_LIBRARY_ROOTS = _library_roots()
def _ipython_dirs() -> tuple[str, ...]:
    dirs = []
    for name in ("IPython", "ipykernel"):
        module_file = getattr(sys.modules.get(name), "__file__", None)
        if module_file:
            dirs.append(os.path.join(os.path.dirname(os.path.realpath(module_file)), ""))
    return tuple(dirs)


_IPYTHON_DIRS = _ipython_dirs()


@dataclass(frozen=True)
class FrameContext:
    """What decides how a frame is shown."""

    resolve_cell: CellResolver
    project_root: str | None
    send_code: bool = True


def exception_entries(error: BaseException, context: FrameContext) -> list[JsonDict]:
    """The raised exception first, then its causes/contexts and any group members."""
    return [_entry(e, context) for e in _chain(error)]


def _chain(error: BaseException) -> Iterator[BaseException]:
    seen: set[int] = set()
    pending = [error]
    while pending and len(seen) < MAX_CHAIN:
        current = pending.pop(0)
        if id(current) in seen:
            continue
        seen.add(id(current))
        yield current
        members = list(current.exceptions) if isinstance(current, BaseExceptionGroup) else []
        follow = current.__cause__ or (None if current.__suppress_context__ else current.__context__)
        pending[:0] = [*members, *([follow] if follow is not None else [])]


def _entry(error: BaseException, context: FrameContext) -> JsonDict:
    frames = [_frame(f, line, context) for f, line in _walk(error.__traceback__)]
    frames = [f for f in frames if f is not None]
    frames.reverse()  # BugSnag wants the innermost frame first
    if isinstance(error, SyntaxError) and error.lineno is not None:
        frames.insert(0, _syntax_frame(error, context))
    return {
        "errorClass": _class_name(error),
        "message": _message(error),
        "type": "python",
        "stacktrace": frames,
    }


def _class_name(error: BaseException) -> str:
    cls = type(error)
    module = cls.__module__
    return cls.__qualname__ if module in ("builtins", "__main__") else f"{module}.{cls.__qualname__}"


def _message(error: BaseException) -> str:
    try:
        if isinstance(error, SyntaxError):
            return str(error.msg or "")
        return str(error)
    except Exception:
        return f"<unprintable {type(error).__name__}>"


def _walk(tb: TracebackType | None) -> Iterator[tuple[Any, int]]:
    while tb is not None:
        yield tb.tb_frame, tb.tb_lineno
        tb = tb.tb_next


def _frame(frame: Any, line: int, context: FrameContext) -> JsonDict | None:
    filename = frame.f_code.co_filename
    if filename.startswith(_IPYTHON_DIRS):
        return None  # IPython's own run_code and friends say nothing about the user's code
    try:
        if frame.f_locals.get("__tracebackhide__"):
            return None
    except Exception:
        pass
    return _located(filename, line, frame.f_code.co_name, context)


def _located(filename: str, line: int, method: str, context: FrameContext) -> JsonDict:
    cell = context.resolve_cell(filename)
    if cell is not None:
        entry: JsonDict = {"file": cell.file, "lineNumber": line, "method": method, "inProject": True}
        if context.send_code:
            entry["code"] = _window(cell.lines, line)
        return entry
    entry = {
        "file": _display_path(filename, context.project_root),
        "lineNumber": line,
        "method": method,
        "inProject": _in_project(filename, context.project_root),
    }
    if context.send_code:
        lines = linecache.getlines(filename)
        if lines:
            entry["code"] = _window(tuple(lines), line)
    return entry


def _syntax_frame(error: SyntaxError, context: FrameContext) -> JsonDict:
    line = error.lineno or 1
    entry = _located(error.filename or "<unknown>", line, "<module>", context)
    if context.send_code and "code" not in entry and error.text:
        entry["code"] = {str(line): error.text.rstrip("\n")}
    return entry


def _window(lines: tuple[str, ...], line: int) -> dict[str, str]:
    if not lines:
        return {}
    half = CODE_WINDOW // 2
    first = max(1, min(line - half, len(lines) - CODE_WINDOW + 1))
    last = min(len(lines), first + CODE_WINDOW - 1)
    return {str(n): lines[n - 1].rstrip("\n") for n in range(first, last + 1)}


def _in_project(filename: str, project_root: str | None) -> bool:
    if not project_root or filename.startswith("<"):
        return False
    path = os.path.realpath(filename)
    if path.startswith(_LIBRARY_ROOTS):
        return False
    return path.startswith(os.path.join(os.path.realpath(project_root), ""))


def _display_path(filename: str, project_root: str | None) -> str:
    if project_root and not filename.startswith("<"):
        root = os.path.join(os.path.realpath(project_root), "")
        path = os.path.realpath(filename)
        if path.startswith(root) and not path.startswith(_LIBRARY_ROOTS):
            return os.path.relpath(path, root)
    return filename
