"""The crash record: what a kernel leaves behind for the next one, in case it dies.

A kernel that is killed (the OOM killer's SIGKILL) or crashes (a segfault in a C extension)
runs none of its exit code, so whatever is to be reported about it must already be on disk.
Each kernel keeps one small file, `kernels/<token>.record` in the persistence directory,
mapped into memory with MAP_SHARED: updating it is a store into memory, which the system
writes back on its own and keeps after the process dies, however it dies. A cell pays no
`write()` for it: starting a cell is one `pack_into` (the cell's number, start, id and
source), ending it one store.

What changes rarely (the session, the breadcrumbs, the notebook, memory facts) is written by
the checkpoint thread (crash_checkpoint.py) as a JSON document in one of two areas, the
other one staying whole, so a death in the middle of a write leaves the previous one.

The record's owner holds a flock() on it for its whole life: the system lets go of it when
the process dies. The next kernel takes that as the sign of death (kernel_deaths.py).
"""

from __future__ import annotations

import contextlib
import faulthandler
import fcntl
import json
import mmap
import os
import secrets
import struct
import sys
import threading
import weakref
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

MAGIC = b"BSGKREC1"
DIRECTORY = "kernels"
RECORD_SUFFIX = ".record"
FAULTS_SUFFIX = ".faults"

# Layout. The header and the slots are fixed; the source and the two JSON areas follow.
_HEADER = struct.Struct("<8sqdd")  # magic, pid, launched (wall), launched (monotonic)
_ENDED = 32  # q: 1 once the kernel began a normal end (a shutdown request, exit)
_DOCUMENT = 40  # q: (generation << 1) | area of the current JSON document
_VITALS = struct.Struct("<ddqqqq")  # last seen (monotonic, wall), RSS, peak RSS, cgroup use, limit
_VITALS_AT = 48
_SESSION = struct.Struct("<q40sdqqq")  # state, id, started, handled, unhandled, sending
_SESSION_AT = 96
_CELL = struct.Struct("<qdq64s")  # count + 1 while running (0 idle), started, source bytes, cell id
_CELL_AT = 192
_RUNNING = _CELL_AT // 8  # index of the running field in the record as int64s
_SOURCE_AT = 320
SOURCE_BYTES = 64 * 1024  # of the running cell; a longer one is cut
DOCUMENT_BYTES = 96 * 1024  # each of the two areas
_DOCUMENT_AT = (_SOURCE_AT + SOURCE_BYTES, _SOURCE_AT + SOURCE_BYTES + 8 + DOCUMENT_BYTES)
SIZE = _DOCUMENT_AT[1] + 8 + DOCUMENT_BYTES

NO_SESSION, ACTIVE, PAUSED = 0, 1, 2

_live: weakref.WeakSet[CrashRecord] = weakref.WeakSet()


class CrashRecord:
    """This kernel's record, mapped and locked until close()."""

    def __init__(self, directory: str | os.PathLike[str], *, launched_wall: float,
                 launched_monotonic: float) -> None:
        """Create the record in `directory` (its `kernels/` folder). Raises OSError if it cannot."""
        folder = Path(directory).expanduser() / DIRECTORY
        folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        self.token = secrets.token_hex(6)
        self.path = folder / f"{self.token}{RECORD_SUFFIX}"
        self.faults_path = folder / f"{self.token}{FAULTS_SUFFIX}"
        # Made under a hidden name and locked before it is seen: a scan never takes a record
        # still being made for a dead one. The lock goes with the file through the rename.
        hidden = folder / f".{self.token}{RECORD_SUFFIX}.tmp"
        fd = os.open(hidden, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            os.ftruncate(fd, SIZE)
            self._mm = mmap.mmap(fd, SIZE)
            _HEADER.pack_into(self._mm, 0, MAGIC, os.getpid(), launched_wall, launched_monotonic)
            os.rename(hidden, self.path)
        except BaseException:
            os.close(fd)
            with contextlib.suppress(OSError):
                os.unlink(hidden)
            raise
        self._fd = fd
        self._words = memoryview(self._mm).cast("q")
        self._pack_cell = _CELL.pack_into
        self._lock = threading.Lock()  # the session slot and the document: written by threads
        self._generation = 0
        self._faults: IO[bytes] | None = None
        self._had_faulthandler = False
        self.closed = False
        _live.add(self)
        _watch_forks()

    # -- the cell's thread: stores only ---------------------------------------------------

    def cell_started(self, count: int, cell_id: str | None, source: str, started: float) -> None:
        """A cell starts: its number, start (monotonic), id and source, in one pack."""
        encoded = source.encode("utf-8", "surrogatepass")
        size = len(encoded)
        if size > SOURCE_BYTES:
            encoded, size = encoded[:SOURCE_BYTES], SOURCE_BYTES
        mm = self._mm
        mm[_SOURCE_AT : _SOURCE_AT + size] = encoded
        self._pack_cell(mm, _CELL_AT, count + 1, started, size,
                        cell_id.encode("utf-8", "surrogatepass") if cell_id else b"")

    def cell_finished(self) -> None:
        self._words[_RUNNING] = 0

    # -- rare writes ----------------------------------------------------------------------

    def session(self, state: int, id: str, started_at: float, handled: int, unhandled: int,
                sending: bool) -> None:
        """The session current now (NO_SESSION, ACTIVE or PAUSED) and whether events are sent."""
        with self._lock:
            _SESSION.pack_into(self._mm, _SESSION_AT, state, id.encode("ascii", "replace"),
                               started_at, handled, unhandled, int(sending))

    def vitals(self, monotonic: float, wall: float, rss: int, peak_rss: int, cgroup_usage: int,
               cgroup_limit: int) -> None:
        """When the kernel was last seen alive, and its memory then (-1: unknown)."""
        _VITALS.pack_into(self._mm, _VITALS_AT, monotonic, wall, rss, peak_rss, cgroup_usage,
                          cgroup_limit)

    def document(self, data: bytes) -> bool:
        """Make `data` (JSON) the current document; False if it does not fit."""
        if len(data) > DOCUMENT_BYTES:
            return False
        with self._lock:
            area = (self._generation + 1) & 1
            at = _DOCUMENT_AT[area]
            struct.pack_into("<q", self._mm, at, len(data))
            self._mm[at + 8 : at + 8 + len(data)] = data
            self._generation += 1
            self._words[_DOCUMENT // 8] = (self._generation << 1) | area  # the switch
        return True

    def mark_ended(self) -> None:
        """The kernel began a normal end: whatever ends the process now is not a death."""
        if not self.closed:
            self._words[_ENDED // 8] = 1

    def catch_faults(self) -> None:
        """Point faulthandler at the fault file: a fatal signal (SIGSEGV, SIGBUS, SIGFPE,
        SIGABRT, SIGILL) writes every thread's Python stack there. Raises OSError."""
        fd = os.open(self.faults_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        self._faults = os.fdopen(fd, "wb", buffering=0)
        self._had_faulthandler = faulthandler.is_enabled()
        faulthandler.enable(self._faults, all_threads=True)

    def _release_faults(self) -> None:
        """Give faulthandler back as it was: to the kernel's stderr if it was on, else off."""
        faults, self._faults = self._faults, None
        if faults is None:
            return
        with contextlib.suppress(Exception):
            if self._had_faulthandler and sys.__stderr__ is not None:
                faulthandler.enable(sys.__stderr__, all_threads=True)
            else:
                faulthandler.disable()
        with contextlib.suppress(OSError):
            faults.close()

    # -- the end --------------------------------------------------------------------------

    def close(self, *, remove: bool) -> None:
        """Stop recording; with `remove`, the record and its fault file go (a normal end)."""
        if self.closed:
            return
        self.closed = True
        if remove:
            self.mark_ended()
            for path in (self.path, self.faults_path):
                with contextlib.suppress(OSError):
                    path.unlink()
        self._release()

    def _release(self) -> None:
        self._release_faults()
        self._words.release()
        self._mm.close()
        os.close(self._fd)

    def forget_after_fork(self) -> None:
        """In a forked child: stop writing to the parent's record and let go of the parent's
        lock (the child's copies of the descriptor would keep it held after the parent died).
        Stores from here on go to private memory, so no cell path needs a check."""
        if self.closed:
            return
        self.closed = True
        self._release()
        self._mm = mmap.mmap(-1, SIZE)
        self._words = memoryview(self._mm).cast("q")


def _forget_in_child() -> None:
    for record in list(_live):
        with contextlib.suppress(Exception):
            record.forget_after_fork()


_watching = False


def _watch_forks() -> None:
    global _watching
    if not _watching:
        _watching = True
        os.register_at_fork(after_in_child=_forget_in_child)


# -- reading a record left behind ----------------------------------------------------------


@dataclass(frozen=True)
class Vitals:
    seen_monotonic: float
    seen_wall: float
    rss: int
    peak_rss: int
    cgroup_usage: int
    cgroup_limit: int


@dataclass(frozen=True)
class SessionState:
    state: int
    id: str
    started_at: float
    handled: int
    unhandled: int


@dataclass(frozen=True)
class RunningCell:
    execution_count: int | None
    cell_id: str | None
    source: str
    started_monotonic: float


@dataclass(frozen=True)
class RecordContents:
    """A record as a dead kernel left it."""

    pid: int
    launched_wall: float
    launched_monotonic: float
    ended: bool
    sending: bool
    session: SessionState | None  # None: no session, or it was paused
    cell: RunningCell | None  # None: idle
    vitals: Vitals | None
    facts: dict[str, Any]  # the last JSON document


class DamagedRecord(ValueError):
    """A file in kernels/ that is not a whole record."""


def read_record(data: bytes) -> RecordContents:
    """The contents of a record's bytes; raises DamagedRecord."""
    if len(data) != SIZE:
        raise DamagedRecord("it is not the size of a record")
    magic, pid, launched_wall, launched_monotonic = _HEADER.unpack_from(data, 0)
    if magic != MAGIC:
        raise DamagedRecord("it is not a crash record of this version")
    ended = struct.unpack_from("<q", data, _ENDED)[0] == 1
    state, raw_id, started_at, handled, unhandled, sending = _SESSION.unpack_from(data, _SESSION_AT)
    session = None
    if state == ACTIVE:
        session = SessionState(state, raw_id.rstrip(b"\0").decode("ascii", "replace"), started_at,
                               handled, unhandled)
    running, started, size, raw_cell_id = _CELL.unpack_from(data, _CELL_AT)
    cell = None
    if running > 0:
        source = data[_SOURCE_AT : _SOURCE_AT + min(max(size, 0), SOURCE_BYTES)]
        cell_id = raw_cell_id.rstrip(b"\0").decode("utf-8", "replace") or None
        cell = RunningCell(running - 1 or None, cell_id, source.decode("utf-8", "replace"), started)
    vitals = Vitals(*_VITALS.unpack_from(data, _VITALS_AT))
    return RecordContents(pid, launched_wall, launched_monotonic, ended, bool(sending), session,
                          cell, vitals if vitals.seen_wall > 0 else None, _document(data))


def _document(data: bytes) -> dict[str, Any]:
    current = struct.unpack_from("<q", data, _DOCUMENT)[0]
    if current <= 0:
        return {}
    at = _DOCUMENT_AT[current & 1]
    size = struct.unpack_from("<q", data, at)[0]
    if not 0 < size <= DOCUMENT_BYTES:
        return {}
    try:
        found = json.loads(data[at + 8 : at + 8 + size])
    except ValueError:
        return {}
    return found if isinstance(found, dict) else {}
