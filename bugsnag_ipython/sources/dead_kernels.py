"""Finding the records of dead kernels in the persistence directory, each claimed once.

    kernels/<token>.record             a kernel's crash record, flock()ed while it lives
    kernels/<token>.faults             its fault dump (faulthandler's file)
    kernels/<token>.<claimer>.claimed  a dead kernel's record, taken by the kernel <claimer>

A record whose lock nobody holds belongs to a kernel that is gone. The next kernel to look
claims it by renaming it to a name of its own, as the outbox claims a dead owner's journal:
rename is atomic, so when two kernels start at once each record goes to exactly one of them.
A claim whose claimer died in turn is claimed again.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import re
import time
from dataclasses import dataclass
from pathlib import Path

from .crash_record import DIRECTORY, FAULTS_SUFFIX, RECORD_SUFFIX

STALE_SECONDS = 3600.0  # a half-made record or a fault dump without a record, left this long
MAX_FAULT_BYTES = 1024 * 1024
_RECORD = re.compile(r"(?P<token>[0-9a-f]{12})\.record")
_CLAIMED = re.compile(r"(?P<token>[0-9a-f]{12})\.(?P<claimer>[0-9a-f]{12})\.claimed")


@dataclass(frozen=True)
class Claimed:
    """A dead kernel's record, now this kernel's to report and remove."""

    token: str
    path: Path
    faults: Path

    def read(self) -> tuple[bytes, str, float | None]:
        """The record's bytes, the fault dump's text and when it was written (None: no dump)."""
        data = self.path.read_bytes()
        try:
            with self.faults.open("rb") as file:
                dump = file.read(MAX_FAULT_BYTES)
                written = os.fstat(file.fileno()).st_mtime if dump else None
        except FileNotFoundError:
            dump, written = b"", None
        return data, dump.decode("utf-8", "replace"), written

    def remove(self) -> None:
        for path in (self.path, self.faults):
            with contextlib.suppress(FileNotFoundError):
                path.unlink()


def alive(path: Path) -> bool:
    """Whether a live kernel holds the lock on the record at `path` (False if it is gone)."""
    try:
        fd = os.open(path, os.O_RDWR)
    except FileNotFoundError:
        return False
    except OSError:
        return True  # cannot tell: leave it alone
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        return True
    finally:
        os.close(fd)  # closing lets go of a lock taken here
    return False


def claim_dead(root: str | os.PathLike[str], own_token: str, now: float | None = None) -> list[Claimed]:
    """Claim the records of dead kernels under `root` for the kernel `own_token`."""
    folder = Path(root).expanduser() / DIRECTORY
    now = time.time() if now is None else now
    try:
        names = sorted(os.listdir(folder))
    except FileNotFoundError:
        return []
    claimed: list[Claimed] = []
    records = set()
    for name in names:
        path = folder / name
        record = _RECORD.fullmatch(name)
        taken = _CLAIMED.fullmatch(name)
        if record is not None:
            token = record["token"]
            records.add(token)
            if token == own_token or alive(path):
                continue
        elif taken is not None:
            token = taken["token"]
            records.add(token)
            if taken["claimer"] == own_token:
                claimed.append(Claimed(token, path, folder / f"{token}{FAULTS_SUFFIX}"))
                continue  # left by an earlier scan of this kernel
            if alive(folder / f"{taken['claimer']}{RECORD_SUFFIX}"):
                continue  # its claimer is reporting it now
        else:
            continue
        mine = folder / f"{token}.{own_token}.claimed"
        try:
            os.rename(path, mine)  # the claim: another kernel's rename of it now fails
        except FileNotFoundError:
            continue
        claimed.append(Claimed(token, mine, folder / f"{token}{FAULTS_SUFFIX}"))
    for name in names:  # leftovers of kernels that died while making or removing a record
        if (name.startswith(".") and name.endswith(".tmp")) or (
            name.endswith(FAULTS_SUFFIX) and name[: -len(FAULTS_SUFFIX)] not in records
        ):
            with contextlib.suppress(OSError):
                if now - (folder / name).stat().st_mtime > STALE_SECONDS:
                    (folder / name).unlink()
    return claimed
