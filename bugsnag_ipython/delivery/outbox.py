"""The outbox: payloads on disk until they are delivered or dropped on purpose. Under the
persistence directory (directories 0700, files 0600):

    outbox/<tag>.<owner>.journal                       the payloads an owner made (journal.py)
    outbox/<kind>-<created ns>-<id>.<owner>.payload   one payload, as older versions stored it
    owners/<owner>.lock                                held with flock() by the live owner
    set-aside/                                         unreadable or foreign files, kept for a look

Only a file's owner sends it. A kernel adopts a dead owner's file by renaming it to its own name
(of two adopters, one gets it), appends what is not done to its journal with the same ids, and
removes the file; an adopter that dies in between leaves both, and the next takes each id once.
"""

from __future__ import annotations

import contextlib
import os
import re
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple

from ..core import private_files
from ..core.basics import Once, log
from ..core.persistence import persistence_directory
from .journal import LIMIT, PAYLOAD_FILE, Journal, Stored, live_payloads, read_file
from .payload import KINDS, MAX_AGE_SECONDS, Kind, Payload

JOURNAL = re.compile(r"(?P<tag>journal-\d{19}-[0-9a-f]+)\.(?P<owner>[0-9a-f]{12})\.journal")
STALE_TEMP_SECONDS = 3600.0


def open_outbox(directory: str | None) -> tuple[Outbox | None, str | None]:
    """The outbox in `directory` (None: the default one), open; or None and why not, said once."""
    try:
        return Outbox(persistence_directory(directory)).open(), None
    except private_files.RefusedDirectory as refused:
        private_files.say_once(refused)  # the crash record and the device id meet the same refusal
        return None, str(refused)
    except Exception as error:
        problem = (f"The outbox in {directory or 'the user cache directory'} cannot be used ({error}); "
                   "payloads are kept in memory only and are lost if the kernel dies before they are sent.")
        log.warning(problem)
        return None, problem


@dataclass
class Scan:
    """What one look through the outbox adopted, and what it discarded."""

    adopted: list[tuple[Journal, Stored]] = field(default_factory=list)  # now this owner's, oldest first
    expired: int = 0
    over_cap: int = 0
    set_aside: list[str] = field(default_factory=list)  # "name: why"


class Listed(NamedTuple):
    """One payload, or one unreadable file (`stored` None), as `bugsnag-ipython outbox` lists it."""

    stored: Stored | None
    owner_alive: bool


class Outbox:
    """The outbox under one persistence directory, as one owner of it once `open()`."""

    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = Path(root).expanduser()
        self.payloads = self.root / "outbox"
        self.owners = self.root / "owners"
        self.aside = self.root / "set-aside"
        self.owner: str | None = None
        self.journal: Journal | None = None  # where this owner's payloads are appended
        self._lock_fd: int | None = None
        self._appending = threading.Lock()
        self._said = Once()
        self._dead: set[str] = set()  # owners an_owner_died() told of (an untrusted file stays)

    def open(self) -> Outbox:
        """Create the directories and become a live owner. Raises OSError (or RefusedDirectory)."""
        private_files.make_private(self.root)  # payloads hold API keys: this user's eyes only
        for directory in (self.payloads, self.owners, self.aside):
            private_files.make_private(directory, root=False)
        if self.owner is None:
            # Locked under a hidden name, then renamed: a scan never meets a live owner's lock unlocked.
            owner = os.urandom(6).hex()
            hidden = self.owners / f".{owner}.tmp"
            self._lock_fd = fd = private_files.create_locked(hidden)
            os.write(fd, f"{os.getpid()}\n".encode())
            os.rename(hidden, self.owners / f"{owner}.lock")
            self.owner, self.journal = owner, self._new_journal(owner)
        return self

    def _new_journal(self, owner: str) -> Journal:
        tag = f"journal-{time.time_ns():019d}-{os.urandom(3).hex()}"
        return Journal(self.payloads / f"{tag}.{owner}.journal", owner)

    def owner_alive(self, owner: str) -> bool:
        """Whether `owner` still holds its lock; a dead owner's lock file goes."""
        path = self.owners / f"{owner}.lock"
        if owner == self.owner:
            return True
        try:
            fd = private_files.lock_if_ownerless(path)
        except (FileNotFoundError, private_files.UntrustedFile):
            return False
        except OSError:
            return True  # cannot tell: leave its files alone
        if fd is None:
            return True
        with contextlib.suppress(OSError):
            os.unlink(path)  # while locked here: no one mistakes it for a live owner's
        os.close(fd)
        return False

    def an_owner_died(self) -> bool:
        """Whether another owner has let go of its lock since last asked (a child that ended)."""
        owners = {name[:-5] for name in _listing(self.owners) if name.endswith(".lock")} - self._dead
        dead = {owner for owner in owners if not self.owner_alive(owner)}
        self._dead |= dead
        return bool(dead)

    def close(self, *, after_fork: bool = False) -> None:
        """Stop owning: the next scan by any kernel adopts what is left. In a forked child
        (`after_fork`), close the copies of the parent's descriptors, which leaves its lock held."""
        journal, self.journal = self.journal, None
        if journal is not None:
            journal.close(remove=journal.live == 0 and not after_fork, after_fork=after_fork)
        fd, self._lock_fd = self._lock_fd, None
        owner, self.owner = self.owner, None
        if fd is not None and not after_fork:
            with contextlib.suppress(OSError):
                os.unlink(self.owners / f"{owner}.lock")
        if fd is not None:
            os.close(fd)

    def store(self, payload: Payload, ident: str | None = None) -> tuple[Journal, Stored]:
        """Append a payload to this owner's journal (a new one past its limit). Raises OSError."""
        with self._appending:
            journal = self.journal
            stored = journal.append(payload, ident) if journal is not None else None
            if journal is None or stored is None:
                raise OSError("the outbox is not open")
            if journal.size > LIMIT:
                try:
                    self.journal = self._new_journal(journal.owner)
                except OSError as error:  # the full one goes on taking appends
                    self._said.say("renew", f"Could not start a new outbox journal ({error}).")
                else:
                    journal.retire()
            return journal, stored

    def keep(self, payload: Payload) -> tuple[Journal, Stored] | None:
        """`store()`, or None, said once, when the disk refuses (the payload stays in memory)."""
        try:
            return self.store(payload)
        except OSError as error:
            self._said.say("write", f"Could not write to the outbox in {self.root} ({error}); "
                           "kept in memory.")
            return None

    def set_aside(self, path: Path) -> bool:
        """Move a file out of the way, keeping it for a look; False if it was already gone."""
        target = self.aside / f"{time.strftime('%Y%m%dT%H%M%S')}-{os.urandom(3).hex()}-{path.name}"
        with contextlib.suppress(FileNotFoundError):
            os.rename(path, target)
            return True
        return False

    def set_aside_count(self) -> int:
        return len(_listing(self.aside))

    def adopt(self, room: Mapping[Kind, int], pause: Callable[[], None] = lambda: None) -> Scan:
        """Adopt dead owners' payloads into this owner's journal, oldest first, but those older than
        60 days and the oldest beyond `room`; set unreadable files aside. `pause` lets other disk
        work go first between files."""
        now = time.time()
        scan, claimed = Scan(), list[Path]()
        for name in _listing(self.payloads):
            path = self.payloads / name
            found = JOURNAL.fullmatch(name) or PAYLOAD_FILE.fullmatch(name)
            if name.startswith("."):  # a temp file, which a writer that died mid-write may leave
                with contextlib.suppress(OSError):
                    if name.endswith(".tmp") and now - path.stat().st_mtime > STALE_TEMP_SECONDS:
                        path.unlink()
            elif found is None:
                if private_files.is_file_or_link(path) and self.set_aside(path):
                    scan.set_aside.append(f"{name}: not a payload file of this notifier")
            elif not self.owner_alive(found["owner"]):
                head, _, suffix = name.rsplit(".", 2)
                mine = path.with_name(f"{head}.{self.owner}.{suffix}")
                with contextlib.suppress(FileNotFoundError):  # another kernel renamed it first
                    os.rename(path, mine)
                    claimed.append(mine)
        # Journals first: a payload file whose id a journal holds was adopted before.
        claimed.sort(key=lambda path: not path.name.endswith(".journal"))
        stored: list[Stored] = []
        done: set[str] = set()
        bodies: dict[Path, bytes] = {}
        damaged: list[Path] = []
        for path in claimed:
            pause()
            try:
                bodies[path], in_file, done_here, problem = read_file(path)
            except FileNotFoundError:
                continue
            except (ValueError, OSError) as error:  # UntrustedFile is a ValueError
                if self.set_aside(path):
                    scan.set_aside.append(f"{path.name}: {error}")
                continue
            stored += in_file
            done |= done_here
            if problem is not None:
                scan.set_aside.append(f"{path.name}: {problem}")
                damaged.append(path)  # set aside once what comes before the damage is adopted
        live = live_payloads(stored, done)
        fresh = [one for one in live if now - one.created_at <= MAX_AGE_SECONDS]
        scan.expired = len(live) - len(fresh)
        over = {kind: max(0, sum(one.kind == kind for one in fresh) - max(0, room[kind])) for kind in KINDS}
        scan.over_cap = sum(over.values())
        for one in fresh:
            if over[one.kind]:  # the oldest go
                over[one.kind] -= 1
                continue
            body = bodies[one.path][one.offset : one.offset + one.size]
            payload = Payload(one.kind, one.url, one.api_key, body, one.created_at)
            scan.adopted.append(self.store(payload, one.ident))
        for path in claimed:
            if path in damaged:
                self.set_aside(path)
            else:
                with contextlib.suppress(FileNotFoundError):
                    path.unlink()
        if scan.set_aside:
            shown = "; ".join(scan.set_aside[:3]) + ("; ..." if len(scan.set_aside) > 3 else "")
            log.warning("Set aside %d unreadable file(s) from the outbox into %s: %s.",
                        len(scan.set_aside), self.aside, shown)
        self.an_owner_died()  # tidies the lock files of owners that left no payload
        return scan

    def listing(self) -> list[Listed]:
        """Every payload, readable or not, and whether a running kernel owns it."""
        listed: list[Listed] = []
        for name in _listing(self.payloads):
            found = JOURNAL.fullmatch(name) or PAYLOAD_FILE.fullmatch(name)
            if found is None or name.startswith("."):
                continue
            owner_alive = private_files.owner_alive(self.owners / f"{found['owner']}.lock")
            try:
                _, stored, done, problem = read_file(self.payloads / name)
            except (ValueError, OSError):
                stored, done, problem = [], set(), "unreadable"
            live = live_payloads(stored, done)
            listed += [Listed(one, owner_alive) for one in live]
            # A live owner may be halfway through an append: only a dead one's journal is damaged.
            if problem is not None and not owner_alive:
                listed.append(Listed(None, owner_alive))
        return listed


def _listing(directory: Path) -> list[str]:
    try:
        return sorted(os.listdir(directory))
    except FileNotFoundError:
        return []

