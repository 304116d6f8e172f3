"""Owners: the kernels that share an outbox, each alive while it holds the flock on its lock
file `owners/<owner>.lock`. The system lets go of the lock when the process dies, however it
dies (a pid check would be fooled by pid reuse)."""

from __future__ import annotations

import contextlib
import os
import secrets
from pathlib import Path

from ..core.private_files import UntrustedFile, open_private

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows: no claims between kernels, see docs
    fcntl = None  # type: ignore[assignment]


def take_lock(directory: Path) -> tuple[str, int]:
    """Become a new owner: its name, and the descriptor that holds its lock while it lives."""
    for _ in range(8):
        owner = secrets.token_hex(6)
        path = directory / f"{owner}.lock"
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
        return owner, fd
    raise OSError(f"could not take a lock in {directory}")


def alive(directory: Path, owner: str, *, tidy: bool = True) -> bool:
    """Whether `owner` still holds its lock. With `tidy`, a dead owner's lock file goes."""
    path = directory / f"{owner}.lock"
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


def _names(directory: Path) -> list[str]:
    try:
        return [name[:-5] for name in sorted(os.listdir(directory)) if name.endswith(".lock")]
    except FileNotFoundError:
        return []


def news_of_death(directory: Path, skip: set[str], seen: set[str]) -> bool:
    """Whether an owner not in `skip` has let go of its lock; the dead are added to `seen`."""
    died = False
    for owner in _names(directory):
        if owner not in skip and not alive(directory, owner, tidy=False):
            seen.add(owner)
            died = True
    return died


def tidy(directory: Path, known: dict[str, bool]) -> None:
    """Remove the lock files of dead owners not in `known` (every kernel leaves one behind)."""
    for owner in _names(directory):
        if owner not in known:
            alive(directory, owner)
