"""The trust rule for every file under the persistence directory.

What is stored there (payloads with their API key, crash records, fault dumps, the device id)
is read back and acted on: a stored payload is sent as it is, a crash record becomes an event
sent with this user's API key. Whoever could write there could make a kernel read files of
theirs and post them, or block it. So, for the outbox, the crash records, the fault files and
the device id alike:

- The directory and its folders belong to this user and are 0700 (made so when they are not);
  a directory of another user, one open to others that cannot be made private, or one that
  cannot be used at all is refused for everything, in one sentence naming the problem and the
  fix (`RefusedDirectory`), said once (`say_once`).
- A file is opened without following a symbolic link (O_NOFOLLOW) and without waiting
  (O_NONBLOCK: a FIFO opens at once), then checked on the open descriptor: a regular file of
  this user's. It is read only up to a limit checked before reading, so a link to /dev/zero is
  refused as a link and a huge file by its size. What fails is an `UntrustedFile`: its user
  sets it aside and counts it.
"""

from __future__ import annotations

import contextlib
import logging
import os
import stat
import threading
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger("bugsnag_ipython")

_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
_NONBLOCK = getattr(os, "O_NONBLOCK", 0)
FIX = "set BUGSNAG_PERSISTENCE_DIRECTORY to a directory of your own"
# What a refused persistence directory costs, said in the same sentence as the cause.
CONSEQUENCE = (
    "so nothing is stored or read there: payloads are kept in memory only (lost if the kernel "
    "dies before they are sent), kernel deaths are not recorded, and the device id lasts one kernel"
)


class UntrustedFile(ValueError):
    """A file the trust rule will not read (the reason is the text)."""


class RefusedDirectory(OSError):
    """A persistence directory (or a folder in it) that is not this user's alone, or cannot be
    used at all; the text is the one sentence that says so and names the fix."""


def make_private(directory: str | os.PathLike[str], *, create: bool = True,
                 root: bool = True) -> Path:
    """`directory`, created 0700 if missing, this user's and private; raises RefusedDirectory
    with one sentence when it belongs to someone else, cannot be made private or cannot be
    used. `root`: it is the persistence directory itself (else a folder in it)."""
    path = Path(directory).expanduser()
    what = "The persistence directory" if root else "The folder"
    consequence = CONSEQUENCE if root else "so it is not used"
    fix = FIX if root else f"remove it, or {FIX}"
    try:
        if create:
            path.mkdir(mode=0o700, parents=True, exist_ok=True)
        facts = os.stat(path)  # a symlinked directory is fine if what it points to is ours
    except OSError as error:
        raise RefusedDirectory(f"{what} {path} cannot be used ({error.strerror or error}), "
                               f"{consequence}; {fix}.") from None
    if not stat.S_ISDIR(facts.st_mode):
        raise RefusedDirectory(f"{what} {path} is not a directory, {consequence}; {fix}.")
    if hasattr(os, "geteuid") and facts.st_uid != os.geteuid():
        raise RefusedDirectory(f"{what} {path} belongs to another user, {consequence}; {fix}.")
    if create and not os.access(path, os.W_OK | os.X_OK):  # its users all meet it: said once, here
        raise RefusedDirectory(f"{what} {path} cannot be used (it is not writable), {consequence}; "
                               f"{fix}.")
    if stat.S_IMODE(facts.st_mode) & 0o077:
        try:
            os.chmod(path, 0o700)
        except OSError as error:
            raise RefusedDirectory(
                f"{what} {path} is open to other users and cannot be made private "
                f"({error.strerror or error}), {consequence}; {fix}."
            ) from None
    return path


_said: set[str] = set()
_said_lock = threading.Lock()


def say_once(refused: RefusedDirectory) -> None:
    """Log the sentence of a refused directory once per process, however many users of the
    directory (the outbox, the crash record, the device id) ran into it."""
    sentence = str(refused)
    with _said_lock:
        if sentence in _said:
            return
        _said.add(sentence)
    log.warning(sentence)


def open_private(path: Path, flags: int = os.O_RDONLY, mode: int = 0o600) -> int:
    """A descriptor on a regular file of this user's at `path`, never through a link and never
    waiting; raises UntrustedFile when it is not one, OSError as the system does."""
    try:
        fd = os.open(path, flags | _NOFOLLOW | _NONBLOCK, mode)
    except OSError as error:
        if os.path.islink(path):
            raise UntrustedFile("it is a symbolic link") from None
        raise error
    facts = os.fstat(fd)
    problem = None
    if not stat.S_ISREG(facts.st_mode):
        problem = "it is not a regular file"
    elif hasattr(os, "geteuid") and facts.st_uid != os.geteuid():
        problem = "it belongs to another user"
    if problem is not None:
        os.close(fd)
        raise UntrustedFile(problem)
    if stat.S_IMODE(facts.st_mode) & 0o077:
        with contextlib.suppress(OSError):
            os.fchmod(fd, 0o600)  # what is stored here holds API keys: private, however made
    return fd


def read_descriptor(fd: int, limit: int, *, cut: bool = False) -> bytes:
    """The bytes of the open file `fd` from its start; raises UntrustedFile, before reading
    anything, when it is larger than `limit`. With `cut`, its first `limit` bytes instead (a
    text whose beginning is what matters, such as a fault dump)."""
    size = os.fstat(fd).st_size
    if size > limit and not cut:
        raise UntrustedFile(f"it is {size} bytes, over the {limit} byte limit")
    size = min(size, limit)
    os.lseek(fd, 0, os.SEEK_SET)
    chunks, left = [], size
    while left > 0:  # no more than its size, even if it grows meanwhile
        chunk = os.read(fd, left)
        if not chunk:
            break
        chunks.append(chunk)
        left -= len(chunk)
    return b"".join(chunks)


def read_private(path: Path, limit: int) -> bytes:
    """The bytes of a regular file of this user's, read without following a link; raises
    UntrustedFile when it is not one or is larger than `limit`, OSError as the system does."""
    fd = open_private(path)
    try:
        return read_descriptor(fd, limit)
    finally:
        os.close(fd)


def is_file_or_link(path: Path) -> bool:
    """A regular file or a symbolic link (to anything), as the directory lists it."""
    try:
        mode = os.lstat(path).st_mode
    except OSError:
        return False
    return stat.S_ISREG(mode) or stat.S_ISLNK(mode)


@dataclass
class Refusals:
    """What the rule refused to one user of the persistence directory in this kernel, for
    status and the panel: the directory's sentence, and the files set aside, and where."""

    problem: str | None = None
    set_aside: int = 0
    folder: str | None = None
