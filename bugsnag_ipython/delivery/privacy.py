"""The persistence directory is this user's alone, and nothing in it is trusted blindly.

Stored payloads hold the API key and are sent by the kernel as they are, so whoever can write
to the directory could make a kernel read files of theirs and post them. So:

- The directory's root and its folders belong to this user and are 0700 (made so when they
  are not); a directory of another user, or one that cannot be made private, is refused with
  one sentence, and delivery then works from memory, as on a full disk.
- Files are opened without following a symbolic link (O_NOFOLLOW), must be regular files of
  this user, and are read only up to a limit checked before reading (a payload's size, or a
  journal's): what fails is set aside by the caller, and counted.
"""

from __future__ import annotations

import contextlib
import os
import stat
from pathlib import Path


class UntrustedFile(ValueError):
    """A file the outbox will not read (the reason is the text)."""


class NotPrivate(OSError):
    """A persistence directory that is not this user's alone (the sentence is the text)."""


def make_private(directory: str | os.PathLike[str], *, create: bool = True) -> Path:
    """`directory`, created 0700 if missing, owned by this user and private; raises NotPrivate
    with one sentence when it belongs to someone else or cannot be made private."""
    path = Path(directory).expanduser()
    if create:
        path.mkdir(mode=0o700, parents=True, exist_ok=True)
    facts = os.stat(path)  # a symlinked directory is fine if what it points to is ours
    if not stat.S_ISDIR(facts.st_mode):
        raise NotPrivate(f"The persistence directory {path} is not a directory.")
    if hasattr(os, "geteuid") and facts.st_uid != os.geteuid():
        raise NotPrivate(
            f"The persistence directory {path} belongs to another user, so payloads are not "
            "stored there; set BUGSNAG_PERSISTENCE_DIRECTORY to a directory of your own."
        )
    if stat.S_IMODE(facts.st_mode) & 0o077:
        try:
            os.chmod(path, 0o700)
        except OSError as error:
            raise NotPrivate(
                f"The persistence directory {path} is open to other users and cannot be made "
                f"private ({error.strerror or error}); set BUGSNAG_PERSISTENCE_DIRECTORY to a "
                "directory of your own."
            ) from None
    return path


def read_private(path: Path, limit: int) -> bytes:
    """The bytes of a regular file of this user's, read without following a link; raises
    UntrustedFile when it is not one or is larger than `limit`, OSError as the system does."""
    fd = open_private(path)
    try:
        size = os.fstat(fd).st_size
        if size > limit:
            raise UntrustedFile(f"it is {size} bytes, over the {limit} byte limit")
        chunks, left = [], size
        while left > 0:
            chunk = os.read(fd, left)
            if not chunk:
                break
            chunks.append(chunk)
            left -= len(chunk)
        return b"".join(chunks)
    finally:
        os.close(fd)


def is_file_or_link(path: Path) -> bool:
    """A regular file or a symbolic link (to anything), as the directory lists it."""
    try:
        mode = os.lstat(path).st_mode
    except OSError:
        return False
    return stat.S_ISREG(mode) or stat.S_ISLNK(mode)


def open_private(path: Path, flags: int = os.O_RDONLY) -> int:
    """A descriptor on a regular file of this user's at `path`, never through a link."""
    try:
        fd = os.open(path, flags | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0))
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
            os.fchmod(fd, 0o600)  # stored payloads hold API keys: private, however made
    return fd
