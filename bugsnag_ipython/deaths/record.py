"""The crash record: what a kernel leaves in case it dies without running its exit code. One small
file per kernel, every block reserved, mapped with MAP_SHARED (stores the system keeps after the process
dies), flock()ed by its owner while it lives. The facts that change rarely are a JSON document in one
of two areas, the other staying whole, so a death in the middle of a write leaves the last one."""

from __future__ import annotations

import contextlib
import errno
import faulthandler
import functools
import json
import mmap
import operator
import os
import struct
import sys
import threading
from collections.abc import Callable
from typing import IO, TYPE_CHECKING, Any, NamedTuple

from ..core import forkguard
from ..core.private_files import create_locked, open_private
from .place import NoRecord, live_folder

if TYPE_CHECKING:
    from ..core.sessions import SessionSnapshot
    from ..report.events import CellRun

# The format's version is the magic's last byte: a record of another version is left to it.
MAGIC = b"BSGKREC1"
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
_CELL = struct.Struct("<qd64s1024s")  # count while running (0 idle), started, cell id, source
_CELL_AT = 192
INLINE_SOURCE_BYTES = 1024  # of the running cell, stored as it starts (NUL-padded)
# A longer source is stored whole by the checkpoint, within a second, tagged with its cell.
_LONG_TAG = struct.Struct("<qdq")  # count, started, bytes
_LONG_AT = _CELL_AT + _CELL.size
SOURCE_BYTES = 64 * 1024  # of a long cell; a longer one is cut
DOCUMENT_BYTES = 96 * 1024  # each of the two areas
_DOCUMENT_AT = (_LONG_AT + _LONG_TAG.size + SOURCE_BYTES,
                _LONG_AT + _LONG_TAG.size + SOURCE_BYTES + 8 + DOCUMENT_BYTES)
SIZE = _DOCUMENT_AT[1] + 8 + DOCUMENT_BYTES

NO_SESSION, ACTIVE, PAUSED = 0, 1, 2

_live = forkguard.ForgottenInChildren()


class CrashRecord:
    """This kernel's record, mapped and locked until close()."""

    def __init__(self, directory: str | os.PathLike[str], *, launched_wall: float,
                 launched_monotonic: float) -> None:
        """Create the record of the persistence directory `directory`, else raise NoRecord."""
        folder, where = live_folder(directory)
        self.token = os.urandom(6).hex()
        self.path = folder / f"{self.token}{RECORD_SUFFIX}"
        self.faults_path = folder / f"{self.token}{FAULTS_SUFFIX}"
        # Made under a hidden name and locked before it is seen: no scan takes it for a dead one.
        hidden = folder / f".{self.token}{RECORD_SUFFIX}.tmp"
        try:
            folder.mkdir(mode=0o700, parents=True, exist_ok=True)
            fd = create_locked(hidden)
        except OSError as error:
            raise _refused(where, error) from None
        try:
            # Every block reserved first: a store into a page with no block behind it, on a full
            # disk or over a quota, is a SIGBUS.
            os.posix_fallocate(fd, 0, SIZE)
            self._mm = mmap.mmap(fd, SIZE)
            _HEADER.pack_into(self._mm, 0, MAGIC, os.getpid(), launched_wall, launched_monotonic)
            os.rename(hidden, self.path)
        except BaseException as error:
            os.close(fd)
            with contextlib.suppress(OSError):
                os.unlink(hidden)
            if isinstance(error, OSError):
                raise _refused(where, error) from None
            raise
        self._fd = fd
        self._words = memoryview(self._mm).cast("q")
        self._bind_cell_stores()
        self._lock = threading.Lock()  # the session slot and the document: written by threads
        self._generation = 0
        self._faults: IO[bytes] | None = None
        self._had_faulthandler = False
        self.closed = False
        _live.add(self)

    def _bind_cell_stores(self) -> None:
        # Partials of C functions run no Python frame: as methods, the per-cell target of `make bench` fails.
        self.store_cell: Callable[[int, float, bytes, bytes], None] = functools.partial(
            _CELL.pack_into, self._mm, _CELL_AT)
        self.cell_finished: Callable[[], None] = functools.partial(
            operator.setitem, self._words, _CELL_AT // 8, 0)  # the running field, as an int64

    def cell_started(self, run: CellRun) -> None:
        """store_cell for a cell run, lone surrogates passed through."""
        count, cell_id, source, started = run
        self.store_cell(count or 0, started, (cell_id or "").encode("utf-8", "surrogatepass"),
                        source.encode("utf-8", "surrogatepass"))

    def session(self, session: SessionSnapshot | None, *, sending: bool) -> None:
        """The session current now (None: none) and whether events are sent."""
        state = NO_SESSION if session is None else PAUSED if session.paused else ACTIVE
        session_id, started_at, handled, unhandled, _ = session or ("", 0.0, 0, 0, False)
        with self._lock:
            _SESSION.pack_into(self._mm, _SESSION_AT, state, session_id.encode("ascii", "replace"),
                               started_at, handled, unhandled, int(sending))

    def long_source(self, count: int, started: float, source: str) -> None:
        """The whole source of the running cell `count`, longer than store_cell's field."""
        encoded = source.encode("utf-8", "surrogatepass")[:SOURCE_BYTES]
        at = _LONG_AT + _LONG_TAG.size
        with self._lock:
            self._mm[at : at + len(encoded)] = encoded
            _LONG_TAG.pack_into(self._mm, _LONG_AT, count, started, len(encoded))

    def vitals(self, *, seen_monotonic: float, seen_wall: float, rss: int, peak_rss: int,
               cgroup_usage: int, cgroup_limit: int) -> None:
        """When the kernel was last seen alive, and its memory then (-1: unknown)."""
        _VITALS.pack_into(self._mm, _VITALS_AT, seen_monotonic, seen_wall, rss, peak_rss,
                          cgroup_usage, cgroup_limit)

    def document(self, data: bytes) -> None:
        """Make `data` (JSON, at most DOCUMENT_BYTES) the current document."""
        with self._lock:
            area = (self._generation + 1) & 1
            at = _DOCUMENT_AT[area]
            struct.pack_into("<q", self._mm, at, len(data))
            self._mm[at + 8 : at + 8 + len(data)] = data
            self._generation += 1
            self._words[_DOCUMENT // 8] = (self._generation << 1) | area  # the switch

    def mark_ended(self) -> None:
        """The kernel began a normal end: whatever ends the process now is not a death."""
        if not self.closed:
            self._words[_ENDED // 8] = 1

    def catch_faults(self) -> None:
        """Point faulthandler at the fault file; raises OSError, or UntrustedFile (a ValueError)."""
        fd = open_private(self.faults_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
        self._faults = os.fdopen(fd, "wb", buffering=0)
        self._had_faulthandler = faulthandler.is_enabled()
        faulthandler.enable(self._faults, all_threads=True)

    def close(self, *, remove: bool) -> None:
        """Let go of the mapping, the lock and faulthandler; with `remove` (a normal end), the files go."""
        if self.closed:
            return
        self.closed = True
        if remove:
            for path in (self.path, self.faults_path):
                with contextlib.suppress(OSError):
                    path.unlink()
        faults, self._faults = self._faults, None
        if faults is not None:
            with contextlib.suppress(Exception):
                if self._had_faulthandler and sys.__stderr__ is not None:
                    faulthandler.enable(sys.__stderr__, all_threads=True)
                else:
                    faulthandler.disable()
            with contextlib.suppress(OSError):
                faults.close()
        self._words.release()
        self._mm.close()
        os.close(self._fd)

    def forget_after_fork(self) -> None:
        """In a forked child: let go of the parent's record and lock; stores go to private memory."""
        if not self.closed:
            self.close(remove=False)
            self._mm = mmap.mmap(-1, SIZE)
            self._words = memoryview(self._mm).cast("q")
            self._bind_cell_stores()


def _refused(where: str, error: OSError) -> NoRecord:
    reason = error.strerror or str(error)
    problem = f"the crash record cannot be made in {where} ({reason})"
    fix = "set BUGSNAG_PERSISTENCE_DIRECTORY to another directory"
    if error.errno in (errno.ENOSPC, errno.EDQUOT):
        problem, fix = f"{where} has no room for the crash record ({reason})", f"free space or {fix}"
    elif error.errno in (errno.EOPNOTSUPP, errno.EINVAL):  # a filesystem that reserves no space
        problem = f"{where} cannot reserve the crash record's space ({reason})"
        fix = "set BUGSNAG_PERSISTENCE_DIRECTORY to a directory on a local disk"
    return NoRecord(f"Kernel deaths are not recorded: {problem}; {fix}.")


class Vitals(NamedTuple):
    seen_monotonic: float
    seen_wall: float
    rss: int
    peak_rss: int
    cgroup_usage: int
    cgroup_limit: int


class SessionState(NamedTuple):
    id: str
    started_at: float
    handled: int
    unhandled: int


class RunningCell(NamedTuple):
    execution_count: int
    cell_id: str | None
    source: str
    started_monotonic: float


class RecordContents(NamedTuple):
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
    """A file in a record folder that is not a whole record."""


# Any time a kernel writes, wall or monotonic, is within the year 9999 of 0: past that, garbage.
_LATEST = 253_402_300_799.0


def read_record(data: bytes) -> RecordContents:
    """The contents of a record's bytes; raises DamagedRecord, also for values no kernel writes."""
    if len(data) != SIZE:
        raise DamagedRecord("it is not the size of a record")
    magic, pid, launched_wall, launched_monotonic = _HEADER.unpack_from(data, 0)
    if magic != MAGIC:
        raise DamagedRecord("it is not a crash record of this version")
    ended = struct.unpack_from("<q", data, _ENDED)[0]
    state, raw_id, started_at, handled, unhandled, sending = _SESSION.unpack_from(data, _SESSION_AT)
    running, started, raw_cell_id, inline = _CELL.unpack_from(data, _CELL_AT)
    vitals = Vitals._make(_VITALS.unpack_from(data, _VITALS_AT))
    times = (launched_wall, launched_monotonic, vitals.seen_monotonic, vitals.seen_wall, started,
             started_at)
    if not (pid > 0 and ended in (0, 1) and state in (NO_SESSION, ACTIVE, PAUSED)
            and sending in (0, 1) and running >= 0 and handled >= 0 and unhandled >= 0
            and min(vitals.rss, vitals.peak_rss, vitals.cgroup_usage, vitals.cgroup_limit) >= -1
            and all(abs(value) <= _LATEST for value in times)):  # False for NaN too
        raise DamagedRecord("it holds values no kernel writes")
    session = None
    if state == ACTIVE:
        session = SessionState(raw_id.rstrip(b"\0").decode("ascii", "replace"), started_at,
                               handled, unhandled)
    cell = None
    if running > 0:
        source = inline.rstrip(b"\0")
        long_count, long_started, size = _LONG_TAG.unpack_from(data, _LONG_AT)
        if (long_count, long_started) == (running, started) and 0 < size <= SOURCE_BYTES:
            at = _LONG_AT + _LONG_TAG.size
            source = data[at : at + size]
        cell_id = raw_cell_id.rstrip(b"\0").decode("utf-8", "replace") or None
        cell = RunningCell(running, cell_id, source.decode("utf-8", "replace"), started)
    facts: Any = {}  # the current JSON document
    current = struct.unpack_from("<q", data, _DOCUMENT)[0]
    at = _DOCUMENT_AT[current & 1]
    size = struct.unpack_from("<q", data, at)[0]
    if current > 0 and 0 < size <= DOCUMENT_BYTES:
        with contextlib.suppress(ValueError):
            facts = json.loads(data[at + 8 : at + 8 + size])
    return RecordContents(pid, launched_wall, launched_monotonic, ended == 1, bool(sending), session, cell,
                          vitals if vitals.seen_wall > 0 else None, facts if isinstance(facts, dict) else {})
