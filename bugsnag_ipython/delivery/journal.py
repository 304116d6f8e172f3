"""The journal: one owner's payloads, appended as they are made (one write(), in the page cache
when it returns: durable against a killed kernel, no fsync). A sequence of

    {"format":2,"id":"<id>","kind":...,"url":...,"apiKey":...,"createdAt":...,"bytes":N}\\n<body>\\n
    {"done":["<id>", ...]}\\n          payloads delivered or dropped since they were appended

Older versions' payload files (one such header without the id, then the body) are read here too."""

from __future__ import annotations

import contextlib
import itertools
import json
import os
import re
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..core.basics import Once
from ..core.private_files import UntrustedFile, read_private
from .payload import KINDS, Kind, Payload

FORMAT = 2  # the format of a journal's headers, and of the payload files older versions wrote
MAX_HEADER = 16384
LIMIT = 16 * 1024 * 1024  # bytes: past this, a new journal takes the appends
# A larger file is not one of ours, and is not read.
MAX_FILE_BYTES = 1_000_000 + MAX_HEADER
MAX_JOURNAL_BYTES = LIMIT + 2 * MAX_FILE_BYTES
PAYLOAD_FILE = re.compile(
    r"(?P<kind>session|event)-(?P<ident>\d{19}-[0-9a-f]+-[0-9a-f]+)\.(?P<owner>[0-9a-f]{12})\.payload"
)
_said = Once()


@dataclass(frozen=True)
class Stored:
    """A payload on disk, as its header describes it: its body is `size` bytes at `offset`."""

    path: Path  # the journal (or an older version's payload file) it is in
    ident: str
    kind: Kind
    url: str
    api_key: str
    created_at: float
    offset: int
    size: int

    @property
    def owner(self) -> str:
        return self.path.name.split(".")[-2]


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
        self.retired = False  # it takes no more appends

    def append(self, payload: Payload, ident: str | None = None) -> Stored | None:
        """Store a payload (keeping the `ident` it was adopted with); None once retired."""
        if ident is None:
            ident = f"{int(payload.created_at * 1e9):019d}-{self.owner}-{next(self._sequence):x}"
        header = {"format": FORMAT, "id": ident, "kind": payload.kind, "url": payload.url,
                  "apiKey": payload.api_key, "createdAt": payload.created_at, "bytes": len(payload.body)}
        line = json.dumps(header, separators=(",", ":")).encode() + b"\n"
        with self._lock:
            if self.retired or self._fd < 0:
                return None
            offset = self.size + len(line)
            self._write(line + payload.body + b"\n")
            self.live += 1
        fields = payload.kind, payload.url, payload.api_key, payload.created_at
        return Stored(self.path, ident, *fields, offset, len(payload.body))

    def _write(self, data: bytes) -> None:
        """Append `data` whole or not at all: a payload cut short would hide every one after it."""
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(self._fd, view) :]
        except OSError:
            with contextlib.suppress(OSError):
                os.ftruncate(self._fd, self.size)
            raise
        self.size += len(data)

    def read(self, offset: int, size: int) -> bytes | None:
        """The body stored at `offset`; None if the file no longer has it."""
        with self._lock, contextlib.suppress(OSError):  # never a descriptor closed, or reused, under it
            body = os.pread(self._fd, size, offset) if self._fd >= 0 else b""
            return body if len(body) == size else None
        return None

    def settle(self, idents: list[str]) -> None:
        """These payloads were delivered or dropped; with none left, empty (or remove) the journal."""
        with self._lock:
            if self._fd < 0:
                return
            self.live = max(0, self.live - len(idents))
            try:
                if self.live == 0 and self.retired:
                    self._close(remove=True)
                elif self.live == 0:
                    os.ftruncate(self._fd, 0)  # nothing in it matters any more
                    self.size = 0
                else:
                    self._write(b'{"done":' + json.dumps(idents).encode() + b"}\n")
            except OSError as error:
                _said.say("settle", f"Could not mark payloads as sent in {self.path} ({error}); "
                          "a later kernel may send them again.")

    def retire(self) -> None:
        """Take no more appends; go once the last payload in it is done."""
        with self._lock:
            self.retired = True
            if self.live == 0:
                self._close(remove=True)

    def close(self, *, remove: bool = False, after_fork: bool = False) -> None:
        """Close (and `remove`) the file; in a forked child, without the lock, which a thread the
        fork left behind may hold."""
        if after_fork:
            self._close()
            return
        with self._lock:
            self._close(remove=remove)

    def _close(self, *, remove: bool = False) -> None:
        fd, self._fd = self._fd, -1
        if fd >= 0:
            with contextlib.suppress(OSError):
                os.close(fd)
        if remove:
            with contextlib.suppress(FileNotFoundError):
                self.path.unlink()


def read_file(path: Path) -> tuple[bytes, list[Stored], set[str], str | None]:
    """A journal's or older payload file's bytes, its payloads, the ids it marks done and why it
    could not be read to its end. Raises UntrustedFile (a ValueError) for a file not ours."""
    if path.name.endswith(".journal"):
        data = read_private(path, MAX_JOURNAL_BYTES)
        return data, *_read_journal(path, data, None)
    match = PAYLOAD_FILE.fullmatch(path.name)
    assert match is not None
    data = read_private(path, MAX_FILE_BYTES) + b"\n"  # a journal of one payload, its id in its name
    found, _, problem = _read_journal(path, data, match["ident"])
    if problem is not None or len(found) != 1:
        raise UntrustedFile("its header is not one this version knows, or its body is cut short")
    return data, found, set(), None


def live_payloads(stored: list[Stored], done: set[str]) -> list[Stored]:
    """The payloads not marked done, each id once (its first), oldest first."""
    first: dict[str, Stored] = {}
    for one in stored:
        first.setdefault(one.ident, one)
    return sorted((one for ident, one in first.items() if ident not in done), key=lambda one: one.created_at)


def _read_journal(path: Path, data: bytes, ident: str | None) -> tuple[list[Stored], set[str], str | None]:
    """A journal's payloads, the ids it marks done, and why it could not be read to its end."""
    found: list[Stored] = []
    done: set[str] = set()
    position = 0
    while position < len(data):
        end = data.find(b"\n", position, position + MAX_HEADER)
        if end < 0:
            return found, done, f"a line at byte {position} has no end"
        try:
            line: Any = json.loads(data[position:end])
        except ValueError:
            return found, done, f"the line at byte {position} is not JSON"
        if isinstance(line, dict) and isinstance(line.get("done"), list):
            done.update(ident for ident in line["done"] if isinstance(ident, str))
            position = end + 1
            continue
        header: Any = line if isinstance(line, dict) else {}
        fields = ("format", "id", "kind", "url", "apiKey", "createdAt", "bytes")
        form, named, kind, url, key, created, size = [header.get(name) for name in fields]
        named = named if ident is None else ident  # an older file's id is its name's
        if not (form == FORMAT and isinstance(named, str) and kind in KINDS and isinstance(key, str) and key
                and isinstance(url, str) and url.startswith(("http://", "https://"))
                and type(created) in (int, float) and type(size) is int and size >= 0):
            return found, done, f"the header at byte {position} is not one this version knows"
        stored = Stored(path, named, kind, url, key, float(created), end + 1, size)
        position = end + 1 + stored.size
        if position >= len(data) or data[position] != 0x0A:
            return found, done, f"the payload {stored.ident} is cut short"
        position += 1
        found.append(stored)
    return found, done, None

