"""Exceptions as BugSnag `exceptions[]` entries, a cell's frames named to group alike in every kernel."""

from __future__ import annotations

import linecache
import os
import sys
import sysconfig
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from functools import cache, cached_property, lru_cache
from types import FrameType, TracebackType
from typing import NamedTuple

from ..core.basics import JsonDict
from .cells import CellRef, NotebookRef, cell_file
from .naming import class_name, message_of

CODE_WINDOW = 7  # lines around the frame's line, as the official notifiers send
MAX_CODE_LINE = 200  # characters of one source line; a minified line says nothing more
MAX_CHAIN = 100  # causes, contexts and group members followed for one event
_PACKAGE_DIR = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "")


@dataclass(frozen=True)
class FrameContext:
    """What decides how a frame is shown."""

    resolve_cell: Callable[[str], CellRef | None]  # a CellMap, or any function of a file name
    project_root: str | None
    send_code: bool = True
    notebook: NotebookRef | None = None

    @cached_property
    def roots(self) -> tuple[str, ...]:
        """The directories whose files are the user's own code."""
        return tuple(root for root in (self.project_root, self.notebook and self.notebook.directory) if root)


def exception_entries(error: BaseException, context: FrameContext) -> list[JsonDict]:
    """The raised exception first, then its causes/contexts and any group members."""
    frames = EventFrames(context)
    # An exception notified unraised carries the stack of the code that notified it, as in bugsnag-python.
    stack: TracebackType | None = None
    frame: FrameType | None = sys._getframe(1) if error.__traceback__ is None else None
    while frame is not None:
        if not frame.f_code.co_filename.startswith(_PACKAGE_DIR):
            stack = TracebackType(stack, frame, frame.f_lasti, frame.f_lineno)
        frame = frame.f_back
    return [_entry(e, frames, stack if e is error else None) for e in _chain(error, set())]


def _chain(error: BaseException, seen: set[int]) -> Iterator[BaseException]:
    if id(error) in seen or len(seen) >= MAX_CHAIN:
        return
    seen.add(id(error))
    yield error
    follow = error.__cause__ or (None if error.__suppress_context__ else error.__context__)
    for then in [*(error.exceptions if isinstance(error, BaseExceptionGroup) else ()), follow]:
        if then is not None:
            yield from _chain(then, seen)


def _entry(error: BaseException, frames: EventFrames, stack: TracebackType | None) -> JsonDict:
    stacktrace = [frames.frame(*frame) for frame in reversed(frames.shown(error, stack))]
    if isinstance(error, SyntaxError) and type(error.lineno) is int:
        # A SyntaxError made by hand may hold anything in its fields: only what they must be is used.
        line, filename, text = error.lineno, error.filename, error.text
        filename = filename if isinstance(filename, str) and filename else "<unknown>"
        entry = frames.frame(filename, line, "<module>")  # the line that did not compile
        if frames.context.send_code and not entry.get("code") and isinstance(text, str) and text:
            entry["code"] = {str(line): text.rstrip("\n")[:MAX_CODE_LINE]}
        # In a cell, the frames are IPython's compiler: the cell is the story.
        stacktrace = [entry] if frames.context.resolve_cell(filename) is not None else [entry, *stacktrace]
    return {"errorClass": class_name(error), "message": message_of(error), "type": "python",
            "stacktrace": stacktrace}


Frame = tuple[str, int, str]  # file name, line, method
Source = tuple[str, bool, Sequence[str] | None]  # a code file as shown: file, in project, its lines


class EventFrames:
    """The frames of one event, each made once (the error-cost target) and copied for each place."""

    def __init__(self, context: FrameContext) -> None:
        self.context = context
        self._sources: dict[str, Source] = {}
        self._made: dict[Frame, JsonDict] = {}

    def shown(self, error: BaseException, stack: TracebackType | None = None) -> list[Frame]:
        """The traceback's frames, outermost first, without hidden and IPython machinery frames."""
        walked: list[Frame] = []
        tb: TracebackType | None = stack or error.__traceback__
        while tb is not None:
            if not _hides_itself(tb.tb_frame):
                code = tb.tb_frame.f_code
                walked.append((code.co_filename, tb.tb_lineno, code.co_qualname))
            tb = tb.tb_next
        return without_machinery(walked, self.context.roots)

    def frame(self, filename: str, line: int, method: str) -> JsonDict:
        made = self._made.get((filename, line, method))
        if made is None:
            if filename not in self._sources:
                self._sources[filename] = self._source(filename)
            file, in_project, lines = self._sources[filename]
            made = {"file": file, "lineNumber": line, "method": method, "inProject": in_project}
            if lines is not None:  # None: no code sent
                made["code"] = window(lines, line)
            self._made[(filename, line, method)] = made
        return {**made, "code": dict(made["code"])} if "code" in made else dict(made)

    def _source(self, filename: str) -> Source:
        context = self.context
        cell = context.resolve_cell(filename)
        if cell is not None:
            return cell_file(context.notebook, cell), True, cell.lines if context.send_code else None
        info = path_info(filename, context.roots)
        lines = (linecache.getlines(filename) or None) if context.send_code else None
        return info.display, info.in_project, lines


def without_machinery(frames: list[Frame], roots: tuple[str, ...]) -> list[Frame]:
    """`frames` (outermost first) without IPython's and ipykernel's, but the innermost (raised there)."""
    inner_end = len(frames)
    while inner_end and path_info(frames[inner_end - 1][0], roots).machinery:
        inner_end -= 1
    kept = [frame for frame in frames[:inner_end] if not path_info(frame[0], roots).machinery]
    return kept + frames[inner_end:]


def _hides_itself(frame: FrameType) -> bool:  # `__tracebackhide__`, the IPython and pytest convention
    code = frame.f_code
    # Reading a function frame's f_locals copies them all: first, whether it has the name at all.
    if code.co_flags & 0x1 and "__tracebackhide__" not in code.co_varnames + code.co_cellvars:
        return False
    try:
        return bool(frame.f_locals.get("__tracebackhide__"))
    except Exception:
        return False


def window(lines: Sequence[str], line: int) -> dict[str, str]:
    """Up to CODE_WINDOW lines around `line` (1-based), keyed by line number as a string."""
    count = len(lines)
    if not 1 <= line <= count:
        return {}
    first = max(1, min(line - CODE_WINDOW // 2, count - CODE_WINDOW + 1))
    last = min(count, first + CODE_WINDOW - 1)
    return {str(n): lines[n - 1].rstrip("\r\n")[:MAX_CODE_LINE] for n in range(first, last + 1)}


class PathInfo(NamedTuple):
    display: str
    in_project: bool
    machinery: bool  # IPython's or ipykernel's own code


@lru_cache(maxsize=4096)
def path_info(filename: str, roots: tuple[str, ...]) -> PathInfo:
    """How a file is shown (cached: realpath is a stat per path component)."""
    if not filename or filename.startswith("<"):
        return PathInfo(filename, False, False)
    path = os.path.realpath(filename)
    libraries, machinery_dirs = _known_dirs()
    machinery = path.startswith(machinery_dirs)
    library = max((root for root in libraries if path.startswith(root)), key=len, default=None)
    if library is not None:
        # Relative to site-packages or the standard library: the same in every environment.
        return PathInfo(os.path.relpath(path, library), False, machinery)
    for root in roots:
        real_root = os.path.join(os.path.realpath(root), "")
        if path.startswith(real_root):
            return PathInfo(os.path.relpath(path, real_root), True, machinery)
    return PathInfo(filename, False, machinery)


@cache
def _known_dirs() -> tuple[tuple[str, ...], tuple[str, ...]]:
    paths = sysconfig.get_paths()
    roots = {paths[key] for key in ("stdlib", "platstdlib", "purelib", "platlib") if key in paths}
    roots.update(p for p in sys.path if p.rstrip("/\\").endswith(("site-packages", "dist-packages")))
    files = (getattr(sys.modules.get(name), "__file__", None) for name in ("IPython", "ipykernel"))
    return (tuple(sorted({os.path.join(os.path.realpath(r), "") for r in roots if r})),
            tuple(os.path.join(os.path.dirname(os.path.realpath(f)), "") for f in files if f))
