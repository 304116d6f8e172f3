"""Dead kernels' records, claimed once, by the dead kernel's watcher or the next kernel's scan.

A record folder holds `<token>.record` (a kernel's record, locked while it lives), `<token>.faults`
(its fault dump), `<token>.<claimer>.claimed[-again]` (a dead kernel's record taken by the kernel
<claimer>, again when the first claimer died), `<token>.died` (a death note) and `set-aside/`.
"""

from __future__ import annotations

import contextlib
import errno
import os
import re
import time
from pathlib import Path
from typing import NamedTuple

from ..core.basics import log
from ..core.private_files import UntrustedFile, lock_if_ownerless, make_private, owner_alive
from ..report.naming import class_name, message_of
from .record import FAULTS_SUFFIX, MAGIC, RECORD_SUFFIX, SIZE, DamagedRecord

STALE_SECONDS = 3600.0  # a half-made record or a fault dump without a record, left this long
SET_ASIDE = "set-aside"
_RECORD = re.compile(r"(?P<token>[0-9a-f]{12})\.record")
_CLAIMED = re.compile(r"(?P<token>[0-9a-f]{12})\.(?P<claimer>[0-9a-f]{12})\.claimed(?P<again>-again)?")
# Errors of the moment, not of the file: it is looked at again by a later scan.
_PASSING = {errno.EMFILE, errno.ENFILE, errno.ENOMEM, errno.EINTR, errno.EAGAIN}


class Claimed(NamedTuple):
    """A dead kernel's record, now this process's to report and remove."""

    token: str
    path: Path
    faults: Path


class SetAside:
    """Where the files of one record folder that cannot be used go: its `set-aside/`, each
    record with its fault file, one log line each; `count` records so far."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder / SET_ASIDE
        self.count = 0

    def put(self, path: Path, faults: Path, error: BaseException | str) -> None:
        why = error if isinstance(error, str) else _why(error)
        stamp = f"{time.strftime('%Y%m%dT%H%M%S')}-{os.urandom(3).hex()}"
        kept = None  # whether the record itself was kept for a look (None: it was gone)
        for each in (path, faults):
            try:
                make_private(self.folder, root=False)
                os.rename(each, self.folder / f"{stamp}-{each.name}")  # a link moves, not its target
                moved = True
            except FileNotFoundError:
                continue
            except OSError:  # not kept for a look, then, but never tried again either
                moved = False
                with contextlib.suppress(OSError):
                    each.unlink()
            kept = moved if each == path else kept
        if kept is None:
            return
        self.count += 1
        if kept:
            log.warning("Set aside the crash record %s of an earlier kernel into %s: %s.",
                        path.name, self.folder, why)
        else:
            log.warning("Removed the crash record %s of an earlier kernel, which could not be set "
                        "aside into %s: %s.", path.name, self.folder, why)


def _why(error: BaseException) -> str:
    if isinstance(error, (UntrustedFile, DamagedRecord)):
        return str(error)
    if isinstance(error, OSError) and error.strerror:
        return error.strerror
    return f"{class_name(error)}: {message_of(error)}"


def claim_dead(folder: Path, own_token: str, aside: SetAside, live: Path) -> list[Claimed]:
    """Claim the records of dead kernels in `folder` for the kernel `own_token`, whose own record
    is in the folder `live`; what cannot be used goes to `aside`. Raises OSError when the
    folder cannot be looked at."""
    try:
        names = sorted(os.listdir(folder))
    except FileNotFoundError:
        return []
    make_private(folder, create=False, root=False)  # never a folder another user could write to
    claimed: list[Claimed] = []
    tokens = set()
    for name in names:
        record, taken = _RECORD.fullmatch(name), _CLAIMED.fullmatch(name)
        found = record or taken
        if found is None:
            continue
        token = found["token"]
        tokens.add(token)
        faults = folder / f"{token}{FAULTS_SUFFIX}"
        if taken is None:
            if token == own_token:
                continue
            mine = folder / f"{token}.{own_token}.claimed"
        elif taken["claimer"] == own_token:
            claimed.append(Claimed(token, folder / name, faults))  # left by an earlier scan of this kernel
            continue
        else:
            claimer = f"{taken['claimer']}{RECORD_SUFFIX}"
            if owner_alive(folder / claimer) or owner_alive(live / claimer):
                continue  # its claimer is reporting it now
            mine = folder / f"{token}.{own_token}.claimed-again"
        if _claim(folder / name, mine, faults, aside, again=taken is not None and bool(taken["again"])):
            claimed.append(Claimed(token, mine, faults))
    for name in names:  # leftovers of kernels that died while making or removing a file here
        if (name.startswith(".") and name.endswith(".tmp")) or (
            name.endswith(FAULTS_SUFFIX) and name[: -len(FAULTS_SUFFIX)] not in tokens
        ):
            with contextlib.suppress(OSError):
                if time.time() - os.lstat(folder / name).st_mtime > STALE_SECONDS:
                    (folder / name).unlink()
    return claimed


def _claim(path: Path, mine: Path, faults: Path, aside: SetAside, *, again: bool) -> bool:
    """Rename the record at `path` to `mine` if its owner (a kernel, or a claimer's watcher) is
    gone; whether it is now this kernel's."""
    try:
        fd = lock_if_ownerless(path)
    except FileNotFoundError:
        return False
    except (OSError, UntrustedFile) as error:
        if not (isinstance(error, OSError) and error.errno in _PASSING):
            aside.put(path, faults, error)
        return False
    if fd is None:
        return False  # a live kernel's, or a claim its watcher is reporting now
    try:
        magic = os.pread(fd, len(MAGIC), 0)
        if not magic.startswith(MAGIC[:7]):  # b"BSGKREC": every version's magic
            raise DamagedRecord("it is not a crash record of any version")
        if magic != MAGIC or os.fstat(fd).st_size != SIZE:
            return False  # another version's, with its fault file: that version reports it
        if again:
            aside.put(path, faults, "two kernels died while reporting it")
            return False
        os.rename(path, mine)  # the claim: another kernel's rename of it now fails
        return True
    except FileNotFoundError:
        return False
    except (OSError, DamagedRecord) as error:
        aside.put(path, faults, error)
        return False
    finally:
        os.close(fd)  # lets go of the lock taken here


def claim_locked(path: Path, fd: int, claimer: str) -> Claimed | None:
    """Claim the record at `path`, whose lock this process (the kernel's watcher `claimer`) holds
    on `fd`: the lock goes with the renamed file, and a scan leaves a claim whose lock is held
    alone. None when `path` no longer names that record (a scan took it first)."""
    found = _RECORD.fullmatch(path.name)
    if found is None:
        return None
    mine = path.with_name(f"{found['token']}.{claimer}.claimed")
    try:
        if not os.path.samestat(os.fstat(fd), os.lstat(path)):
            return None
        os.rename(path, mine)
    except FileNotFoundError:
        return None
    return Claimed(found["token"], mine, path.with_name(f"{found['token']}{FAULTS_SUFFIX}"))
