"""Crash records as tests leave them: a dead kernel's, damaged ones, another version's, and
files that only bear a record's name. Read back only through the rule (never a FIFO or a link)."""

from __future__ import annotations

import os
import stat
import time
from pathlib import Path

from bugsnag_ipython.core.sessions import SessionSnapshot
from bugsnag_ipython.deaths.place import DIRECTORY
from bugsnag_ipython.deaths.record import (
    SIZE,
    CrashRecord,
    DamagedRecord,
    RecordContents,
    read_record,
)
from bugsnag_ipython.report.events import CellRun

SESSION = "0f1e2d3c-1111-4222-8333-444455556666"
HEADER_BYTES = 32  # magic, pid, launched (wall and monotonic)


def left_dead(directory: Path, *, source: str = "model.fit(data)") -> Path:
    """A record as a kernel killed while running a cell leaves it: made by the record's own
    code, then let go (its lock released, as the system does when a process dies)."""
    record = CrashRecord(directory, launched_wall=time.time() - 60,
                         launched_monotonic=time.monotonic() - 60)
    record.session(SessionSnapshot(SESSION, time.time() - 60, 0, 0, False), sending=True)
    record.cell_started(CellRun(7, "train", source, time.monotonic() - 5))
    record.vitals(seen_monotonic=time.monotonic(), seen_wall=time.time(), rss=123_456_789,
              peak_rss=223_456_789, cgroup_usage=-1, cgroup_limit=-1)
    record.document(b"{}")
    record.close(remove=False)
    return record.path


def token_name(suffix: str = ".record") -> str:
    return f"{os.urandom(6).hex()}{suffix}"


def damaged(directory: Path) -> Path:
    """A record with a whole header (this version's magic, a pid, launch times) and garbage
    after it, of a record's size."""
    genuine = left_dead(directory)
    header = genuine.read_bytes()[:HEADER_BYTES]
    path = genuine.with_name(token_name())
    path.write_bytes(header + os.urandom(SIZE - HEADER_BYTES))
    genuine.unlink()
    return path


def other_version(directory: Path, magic: bytes = b"BSGKREC2", size: int = SIZE) -> Path:
    """A dead record another version of the package would write: another magic or size."""
    genuine = left_dead(directory)
    data = magic + genuine.read_bytes()[len(magic):]
    path = genuine.with_name(token_name())
    path.write_bytes(data[:size] + bytes(max(0, size - len(data))))
    genuine.unlink()
    return path


def kernels(directory: Path) -> Path:
    return directory / DIRECTORY


def regular_records(directory: Path) -> list[Path]:
    """The regular `*.record` files in the folder (a FIFO or a link is never opened here)."""
    found = []
    for path in kernels(directory).glob("*.record"):
        try:
            if stat.S_ISREG(os.lstat(path).st_mode):
                found.append(path)
        except FileNotFoundError:
            continue
    return found


def read_whole(path: Path) -> RecordContents | None:
    """A regular record's contents, or None if it is gone, damaged or another version's."""
    try:
        return read_record(path.read_bytes())
    except (OSError, DamagedRecord):
        return None
