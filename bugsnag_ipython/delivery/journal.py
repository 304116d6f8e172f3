"""The journal: the payloads a kernel makes, appended to one open file as they are made.

A payload file of its own (create, write, rename) costs the thread that made the payload
50-300 µs of system time, and that thread is a cell's. Appending to a file that is already
open is one write(), about 5 µs, and is as durable against a killed kernel: the bytes are in
the kernel's page cache when write() returns (no fsync, by design, as for payload files).

A journal is a sequence of lines and bodies:

    {"format":2,"id":"<id>","kind":...,"url":...,"apiKey":...,"createdAt":...,"bytes":N}\\n<body>\\n
    {"done":["<id>", ...]}\\n          payloads delivered or dropped since they were appended

Each journal belongs to one owner (`<tag>.<owner>.journal`), which alone appends to it. When
none of its payloads is left to send, the owner empties it. A journal that grows past
`LIMIT` is retired: a new one takes the appends, and the old one's payloads become payload
files (`Outbox.write`) before it goes. A kernel that adopts a dead owner's journal does the
same with what was not done (`Outbox.scan`).
"""

from __future__ import annotations

import contextlib
import itertools
import json
import os
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

from .transport import KINDS, Envelope, Kind

FORMAT = 2  # the header's fields are those of a payload file's (outbox.FORMAT)
LIMIT = 16 * 1024 * 1024  # past this many bytes, the journal is retired and its payloads filed
_MAX_LINE = 16384


class Retired(OSError):
    """The journal takes no more appends: use the outbox's current one."""


class CorruptJournal(ValueError):
    """A journal this notifier cannot read to its end (the reason is the text)."""


class Journal:
    """One owner's open journal. Appends and settlements may come from any thread."""

    def __init__(self, path: Path, owner: str) -> None:
        self.path = path
        self.owner = owner
        # O_EXCL: the name is new to this owner, and an existing file would be someone's.
        self._fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL | os.O_APPEND, 0o600)
        self._lock = threading.Lock()
        self._sequence = itertools.count()
        self.size = 0  # bytes in the file: every write to it goes through this object
        self.live = 0  # payloads in it that are neither delivered nor dropped
        self.retired = False
        self._prefixes: dict[tuple[str, str, str], bytes] = {}

    def append(self, envelope: Envelope) -> tuple[str, int]:
        """Store a payload; returns its id and its body's offset. Raises OSError (`Retired`)."""
        ident = f"{int(envelope.created_at * 1e9):019d}-{self.owner}-{next(self._sequence):x}"
        body = envelope.body
        header = self._prefix(envelope) + (
            f'"id":"{ident}","createdAt":{envelope.created_at!r},"bytes":{len(body)}}}\n'.encode()
        )
        record = b"".join((header, body, b"\n"))
        with self._lock:
            if self.retired or self._fd < 0:
                raise Retired("the journal was retired")
            offset = self.size
            self._write_all(record, offset)
            self.size = offset + len(record)
            self.live += 1
        return ident, offset + len(header)

    def _prefix(self, envelope: Envelope) -> bytes:
        # The header's fixed part, per kind, endpoint and key: JSON-escaped once, not per event.
        key = (envelope.kind, envelope.url, envelope.api_key)
        prefix = self._prefixes.get(key)
        if prefix is None:
            fixed = {"format": FORMAT, "kind": envelope.kind, "url": envelope.url, "apiKey": envelope.api_key}
            prefix = self._prefixes[key] = json.dumps(fixed, separators=(",", ":"))[:-1].encode() + b","
        return prefix

    def _write_all(self, data: bytes, offset: int) -> None:
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(self._fd, view) :]
        except OSError:
            # A record cut short would hide every record after it: take it back out.
            with contextlib.suppress(OSError):
                os.ftruncate(self._fd, offset)
            raise

    def read(self, offset: int, size: int) -> bytes:
        """The body stored at `offset`; raises CorruptJournal if the file no longer has it."""
        with self._lock:  # never a descriptor closed, or reused, under the read
            if self._fd < 0:
                raise Retired("the journal was removed")
            body = os.pread(self._fd, size, offset)
        if len(body) != size:
            raise CorruptJournal("the journal is shorter than its payload")
        return body

    def settle(self, idents: list[str]) -> None:
        """These payloads were delivered or dropped; once none is left, the journal is emptied."""
        if not idents:
            return
        with self._lock:
            if self._fd < 0:
                return
            self.live = max(0, self.live - len(idents))
            if self.live == 0 and self.retired:
                self._remove_locked()
                return
            if self.live == 0:
                os.ftruncate(self._fd, 0)  # nothing in it matters any more
                self.size = 0
                return
            line = b'{"done":' + json.dumps(idents).encode() + b"}\n"
            self._write_all(line, self.size)
            self.size += len(line)

    def retire(self) -> None:
        """Take no more appends (the outbox has a new journal for them)."""
        with self._lock:
            self.retired = True

    def remove(self) -> None:
        """Close and delete the file: everything in it is delivered, dropped or filed."""
        with self._lock:
            self._remove_locked()

    def _remove_locked(self) -> None:
        self._close_locked()
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()

    def close(self) -> None:
        with self._lock:
            self._close_locked()

    def _close_locked(self) -> None:
        fd, self._fd = self._fd, -1
        if fd >= 0:
            os.close(fd)

    def forget_after_fork(self) -> None:
        """In a forked child: close the inherited descriptor, leaving the parent's file be."""
        fd, self._fd = self._fd, -1
        if fd >= 0:
            with contextlib.suppress(OSError):
                os.close(fd)


@dataclass(frozen=True)
class JournalEntry:
    """A payload a journal holds, as its header describes it."""

    ident: str
    kind: Kind
    url: str
    api_key: str
    created_at: float
    offset: int  # of the body
    size: int

    def envelope(self, body: bytes) -> Envelope:
        return Envelope(self.kind, self.url, self.api_key, body, self.created_at)


@dataclass
class Contents:
    """What a journal holds that is still to be sent, and how far it could be read."""

    entries: list[JournalEntry] = field(default_factory=list)
    problem: str | None = None  # why the rest could not be read, if it could not


def read_contents(data: bytes) -> Contents:
    """The payloads of a journal's bytes that were not marked done, oldest first."""
    entries: dict[str, JournalEntry] = {}
    contents = Contents()
    try:
        for entry in _records(data):
            if isinstance(entry, list):
                for ident in entry:
                    entries.pop(ident, None)
            else:
                entries[entry.ident] = entry
    except CorruptJournal as error:
        contents.problem = str(error)
    contents.entries = list(entries.values())
    return contents


def _records(data: bytes) -> Iterator[JournalEntry | list[str]]:
    position = 0
    while position < len(data):
        end = data.find(b"\n", position, position + _MAX_LINE)
        if end < 0:
            raise CorruptJournal(f"a line at byte {position} has no end")
        try:
            line: Any = json.loads(data[position:end])
        except ValueError:
            raise CorruptJournal(f"the line at byte {position} is not JSON") from None
        position = end + 1
        if isinstance(line, dict) and isinstance(line.get("done"), list):
            yield [ident for ident in line["done"] if isinstance(ident, str)]
            continue
        entry = _entry(line, position)
        if position + entry.size + 1 > len(data) or data[position + entry.size] != 0x0A:
            raise CorruptJournal(f"the payload {entry.ident} is cut short")
        position += entry.size + 1
        yield entry


def _entry(header: Any, offset: int) -> JournalEntry:
    if not isinstance(header, dict) or header.get("format") != FORMAT:
        raise CorruptJournal(f"the header at byte {offset} is not in a format this version knows")
    ident, fields = header.get("id"), header_fields(header)
    if not isinstance(ident, str) or fields is None:
        raise CorruptJournal(f"the header at byte {offset} lacks the id, kind, endpoint, key or length")
    return JournalEntry(ident, *fields[:4], offset, fields[4])


def header_fields(header: dict[str, Any]) -> tuple[Kind, str, str, float, int] | None:
    """A stored payload's kind, endpoint, API key, creation time and length, from its header
    (in a journal or a payload file); None if one is missing or not what it must be."""
    kind, url, key = header.get("kind"), header.get("url"), header.get("apiKey")
    created, size = header.get("createdAt"), header.get("bytes")
    if (
        kind not in KINDS
        or not isinstance(url, str)
        or not url.startswith(("http://", "https://"))
        or not isinstance(key, str)
        or not key
        or isinstance(created, bool)
        or not isinstance(created, int | float)
        or isinstance(size, bool)
        or not isinstance(size, int)
        or size < 0
    ):
        return None
    return cast(Kind, kind), url, key, float(created), size
