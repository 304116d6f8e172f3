"""The outbox: payloads on disk until they are delivered or dropped on purpose.

Layout under the persistence directory (every directory 0700, every file 0600):

    outbox/<tag>.<owner>.journal                       the payloads a live owner made (journal.py)
    outbox/<kind>-<created ns>-<id>.<owner>.payload   one payload: a JSON header line, the body
    owners/<owner>.lock                                held with flock() by the live owner
    set-aside/                                         unreadable or foreign files, kept for a look

Several kernels of one user share an outbox. Each file belongs to the owner named in it, and
only its owner sends it. An owner is alive while it holds the flock on its lock file; the
kernel lets go of it when it dies, however it dies (a pid check would be fooled by pid reuse).
A kernel adopts a dead owner's files by renaming each to its own name: rename is atomic, so
when two kernels adopt at once, each file goes to exactly one of them. A dead owner's journal
is claimed the same way, and what it holds that was not done becomes payload files.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import os
import re
import secrets
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..core.private_files import UntrustedFile, make_private, open_private, read_private
from .journal import LIMIT as JOURNAL_LIMIT
from .journal import Journal, header_fields
from .transport import Envelope, Kind

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows: no claims between kernels, see docs
    fcntl = None  # type: ignore[assignment]

FORMAT = 2  # 2: the body's length in the header (1 had its SHA-1)
STALE_TEMP_SECONDS = 3600.0  # a temp file this old was left by a writer that died mid-write
NAME = re.compile(
    r"(?P<kind>session|event)-(?P<ns>\d{19})-(?P<id>[0-9a-f]+-[0-9a-f]+)\.(?P<owner>[0-9a-f]{12})\.payload"
)
JOURNAL = re.compile(r"(?P<tag>journal-\d{19}-[0-9a-f]+)\.(?P<owner>[0-9a-f]{12})\.journal")
_MAX_HEADER_BYTES = 16384
# No payload file is larger than one payload (BugSnag's limit) and its header, and no journal
# much larger than its limit; a file that is, is not one of ours, and is not read.
MAX_FILE_BYTES = 1_000_000 + _MAX_HEADER_BYTES
MAX_JOURNAL_BYTES = JOURNAL_LIMIT + 2 * MAX_FILE_BYTES


# A file in the outbox that is not a payload this notifier wrote, or not one it may trust (the
# reason is the text): refused the same way whether reading or parsing it found out.
CorruptPayload = UntrustedFile


def default_directory() -> str:
    """The user's cache directory for this notifier (imports platformdirs, off the main thread)."""
    import platformdirs

    return str(platformdirs.user_cache_dir("bugsnag-ipython", appauthor=False))


@dataclass(frozen=True)
class Stored:
    """A payload file, as its header describes it."""

    path: Path
    kind: Kind
    url: str
    api_key: str
    created_at: float
    size: int  # bytes of the body

    @property
    def owner(self) -> str:
        return self.path.name.split(".")[-2]


if TYPE_CHECKING:
    from .adoption import Scan


class Outbox:
    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = Path(root).expanduser()
        self.payloads = self.root / "outbox"
        self.owners = self.root / "owners"
        self.aside = self.root / "set-aside"
        self.owner: str | None = None
        self.journal: Journal | None = None  # where this owner's payloads are appended
        self._lock_fd: int | None = None
        self._sequence = itertools.count()

    # -- owning ---------------------------------------------------------------------------

    def open(self) -> Outbox:
        """Create the directories and become a live owner. Raises OSError if it cannot, and
        RefusedDirectory (an OSError, one sentence) for a directory that is not this user's
        alone or cannot be used."""
        make_private(self.root)  # payloads hold API keys: this user's eyes only
        for directory in (self.payloads, self.owners, self.aside):
            make_private(directory, root=False)
        if self.owner is None:
            self._become_owner()
            self.journal = self._new_journal()
        return self

    def _new_journal(self) -> Journal:
        assert self.owner is not None
        tag = f"journal-{time.time_ns():019d}-{secrets.token_hex(3)}"
        return Journal(self.payloads / f"{tag}.{self.owner}.journal", self.owner)

    def renew_journal(self) -> Journal:
        """Retire the journal for a new one, which takes the appends from now on; returns the
        old one, whose payloads the caller files before removing it."""
        old = self.journal
        assert old is not None and self.owner is not None
        self.journal = self._new_journal()
        old.retire()
        return old

    def _become_owner(self) -> None:
        for _ in range(8):
            owner = secrets.token_hex(6)
            path = self.owners / f"{owner}.lock"
            fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o600)
            try:
                if fcntl is not None:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                # Someone who took our new file for a dead owner's may have unlinked it.
                if os.fstat(fd).st_ino != os.stat(path).st_ino:
                    raise BlockingIOError
            except (BlockingIOError, FileNotFoundError):
                os.close(fd)
                continue
            os.write(fd, f"{os.getpid()}\n".encode())
            self.owner, self._lock_fd = owner, fd
            return
        raise OSError(f"could not take a lock in {self.owners}")

    def close(self) -> None:
        """Stop owning: the next scan by any kernel adopts what is left."""
        journal, self.journal = self.journal, None
        if journal is not None and journal.live == 0:
            journal.remove()
        elif journal is not None:
            journal.close()  # what it holds is adopted with the rest
        fd, self._lock_fd = self._lock_fd, None
        owner, self.owner = self.owner, None
        if fd is not None:
            with contextlib.suppress(OSError):
                os.unlink(self.owners / f"{owner}.lock")
            os.close(fd)

    def forget_after_fork(self) -> None:
        """In a forked child: drop the parent's lock without unlocking it.

        The child's copy of the descriptor shares the parent's lock, so LOCK_UN here would
        release the parent's. Closing the copy leaves the parent's lock as it was.
        """
        fd, self._lock_fd, self.owner = self._lock_fd, None, None
        journal, self.journal = self.journal, None
        if journal is not None:
            journal.forget_after_fork()
        if fd is not None:
            with contextlib.suppress(OSError):
                os.close(fd)

    def alive(self, owner: str, known: dict[str, bool], *, tidy: bool = True) -> bool:
        """owner_alive(), asked once per owner and listing: it takes a lock to answer."""
        if owner not in known:
            known[owner] = self.owner_alive(owner, tidy=tidy)
        return known[owner]

    def owner_alive(self, owner: str, *, tidy: bool = True) -> bool:
        """Whether `owner` still holds its lock. With `tidy`, a dead owner's lock file goes."""
        if owner == self.owner:
            return True
        path = self.owners / f"{owner}.lock"
        try:
            fd = open_private(path, os.O_RDWR)
        except FileNotFoundError:
            return False
        except UntrustedFile:
            return False  # no kernel holds a lock on a link or a FIFO: it goes, as a dead one's
        except OSError:
            return True  # cannot tell: leave its files alone
        try:
            if fcntl is None:  # pragma: no cover
                return True
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                return True
            if tidy:
                # Unlinked while we hold the lock, so no one can mistake it for a live one.
                with contextlib.suppress(OSError):
                    os.unlink(path)
            return False
        finally:
            os.close(fd)

    def an_owner_died(self, seen: set[str]) -> bool:
        """Whether an owner other than this one, and not in `seen`, has let go of its lock (a
        child that ended); the dead are added to `seen`, so each death is news once."""
        died = False
        for name in listing(self.owners):
            owner = name[:-5]
            if not name.endswith(".lock") or owner == self.owner or owner in seen:
                continue
            if not self.owner_alive(owner, tidy=False):
                seen.add(owner)
                died = True
        return died

    # -- payload files --------------------------------------------------------------------

    def write(self, envelope: Envelope, ident: str | None = None) -> Path:
        """Store one payload atomically (temp file, then rename); no fsync, by design: the
        outbox survives a killed kernel, which is the failure that matters here. `ident`
        keeps the id a journal gave it."""
        owner = self.owner
        if owner is None:
            raise OSError("the outbox is not open")
        if ident is None:
            ident = f"{int(envelope.created_at * 1e9):019d}-{owner}-{next(self._sequence):x}"
        name = f"{envelope.kind}-{ident}.{owner}.payload"
        header = {
            "format": FORMAT,
            "kind": envelope.kind,
            "url": envelope.url,
            "apiKey": envelope.api_key,
            "createdAt": envelope.created_at,
            # The body's length tells a damaged file (temp file and rename already keep a
            # half-written one out); a checksum would cost the cell's thread ~30 µs an event.
            "bytes": len(envelope.body),
        }
        data = json.dumps(header, separators=(",", ":")).encode() + b"\n" + envelope.body
        temporary = self.payloads / f".{name}.tmp"
        fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view) :]
        finally:
            os.close(fd)
        final = self.payloads / name
        os.rename(temporary, final)
        return final

    def read(self, path: Path) -> tuple[Stored, bytes]:
        """A payload and its body; raises CorruptPayload, or FileNotFoundError if it is gone."""
        data = read_private(path, MAX_FILE_BYTES)
        header, _, body = data.partition(b"\n")
        stored = _parse_header(path, header)
        if len(body) != stored.size:
            raise CorruptPayload("its body is not the length its header says")
        return stored, body

    def read_header(self, path: Path) -> Stored:
        fd = open_private(path)
        try:
            size = os.fstat(fd).st_size
            if size > MAX_FILE_BYTES:  # said before reading, not found out by reading it all
                raise CorruptPayload(f"it is {size} bytes, larger than any payload")
            line = os.read(fd, _MAX_HEADER_BYTES).partition(b"\n")[0]
        finally:
            os.close(fd)
        return _parse_header(path, line)

    @staticmethod
    def delete(path: Path) -> None:
        with contextlib.suppress(FileNotFoundError):
            path.unlink()

    def set_aside(self, path: Path) -> bool:
        """Move a file out of the way, keeping it for a look; False if it was already gone."""
        target = self.aside / f"{time.strftime('%Y%m%dT%H%M%S')}-{secrets.token_hex(3)}-{path.name}"
        try:
            os.rename(path, target)
        except FileNotFoundError:
            return False
        return True

    # -- scanning -------------------------------------------------------------------------

    def scan(
        self,
        room: Mapping[Kind, int],
        now: float | None = None,
        pause: Callable[[], None] = lambda: None,
    ) -> Scan:
        """Adopt the payloads of dead owners, oldest first (adoption.py)."""
        from .adoption import adopt

        return adopt(self, room, now, pause)

    def set_aside_count(self) -> int:
        return len(listing(self.aside))

def listing(directory: Path) -> list[str]:
    try:
        return sorted(os.listdir(directory))
    except FileNotFoundError:
        return []


def read_journal(path: Path) -> bytes:
    """A journal's bytes, for the listing: read as carefully as in a scan."""
    return read_private(path, MAX_JOURNAL_BYTES)


def _parse_header(path: Path, line: bytes) -> Stored:
    try:
        header: Any = json.loads(line)
    except ValueError:
        raise CorruptPayload("its header is not JSON") from None
    if not isinstance(header, dict) or header.get("format") != FORMAT:
        raise CorruptPayload("its header is not in a format this version knows")
    fields = header_fields(header)
    if fields is None:
        raise CorruptPayload("its header lacks the kind, endpoint, API key or length")
    return Stored(path, *fields)
