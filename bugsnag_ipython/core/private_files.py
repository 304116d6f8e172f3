"""The trust rule for every file under the persistence directory: what is stored there is acted on
(sent with this user's API key), so folders must be this user's and 0700, and a file is read only
if it is a regular file of this user's, never through a link, up to a limit. A file's owner is
alive while it holds a flock() on it, which the system lets go of when the process dies."""

import contextlib
import os
import stat
from dataclasses import dataclass
from pathlib import Path

from .basics import Once

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows: no owner is ever seen gone
    fcntl = None  # type: ignore[assignment]

_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
FIX = "set BUGSNAG_PERSISTENCE_DIRECTORY to a directory of your own"


class UntrustedFile(ValueError):
    """A file the trust rule will not read (the reason is the text)."""


class RefusedDirectory(OSError):
    """A persistence directory (or a folder in it) refused, in one sentence that names the fix."""


def is_mine(facts: os.stat_result) -> bool:
    """Whether the file of `facts` belongs to this user (everything does without user ids)."""
    return not hasattr(os, "geteuid") or facts.st_uid == os.geteuid()


def make_private(directory: str | os.PathLike[str], *, create: bool = True,
                 root: bool = True) -> Path:
    """`directory` (the persistence directory if `root`), created 0700, this user's, else RefusedDirectory."""
    path = Path(directory).expanduser()
    problem = None
    try:
        if create:
            path.mkdir(mode=0o700, parents=True, exist_ok=True)
        facts = os.stat(path)  # a symlinked directory is fine if what it points to is ours
    except OSError as error:
        problem = f"cannot be used ({error.strerror or error})"
    else:
        if not stat.S_ISDIR(facts.st_mode):
            problem = "is not a directory"
        elif not is_mine(facts):
            problem = "belongs to another user"
        elif create and not os.access(path, os.W_OK | os.X_OK):  # its users all meet it: said here
            problem = "cannot be used (it is not writable)"
        elif stat.S_IMODE(facts.st_mode) & 0o077:
            try:
                os.chmod(path, 0o700)
            except OSError as error:
                problem = f"is open to other users and cannot be made private ({error.strerror or error})"
    if problem is None:
        return path
    if root:  # what a refused persistence directory costs, said with its cause
        raise RefusedDirectory(
            f"The persistence directory {path} {problem}, so nothing is stored or read there: payloads are "
            "kept in memory only (lost if the kernel dies before they are sent), kernel deaths are not "
            f"recorded, and the device id lasts one kernel; {FIX}.")
    raise RefusedDirectory(f"The folder {path} {problem}, so it is not used; remove it, or {FIX}.")


_refusals = Once()


def say_once(refused: RefusedDirectory) -> None:
    """Log a refused directory's sentence once per process, however many of its users met it."""
    _refusals.say(str(refused), str(refused))


def open_private(path: Path, flags: int = os.O_RDONLY, *, loose: bool = True) -> int:
    """A descriptor on a regular file of this user's at `path`, else UntrustedFile. A file open
    to other users is made 0600 (what is stored here holds API keys), or with `loose` off refused."""
    try:
        fd = os.open(path, flags | _NOFOLLOW | getattr(os, "O_NONBLOCK", 0), 0o600)  # a FIFO never blocks
    except OSError as error:
        if os.path.islink(path):
            raise UntrustedFile("it is a symbolic link") from None
        raise error
    facts = os.fstat(fd)
    problem = None
    if not stat.S_ISREG(facts.st_mode):
        problem = "it is not a regular file"
    elif not is_mine(facts):
        problem = "it belongs to another user"
    elif stat.S_IMODE(facts.st_mode) & 0o077:
        if loose:
            with contextlib.suppress(OSError):
                os.fchmod(fd, 0o600)
        else:
            problem = "it is open to other users"
    if problem is not None:
        os.close(fd)
        raise UntrustedFile(problem)
    return fd


def read_private(path: Path, limit: int, *, loose: bool = True) -> bytes:
    """The bytes of a file `open_private` opens; UntrustedFile if it is larger than `limit`."""
    with open(open_private(path, loose=loose), "rb") as file:
        size = os.fstat(file.fileno()).st_size
        if size > limit:
            raise UntrustedFile(f"it is {size} bytes, over the {limit} byte limit")
        return file.read(size)  # no more than its size, even if it grows meanwhile


def write_private(path: Path, data: bytes) -> None:
    """Make `data` the file at `path` at once (written beside it, renamed over it): never seen half-done."""
    hidden = path.with_name(f".{path.name}.{os.urandom(4).hex()}.tmp")
    try:
        with open(open_private(hidden, os.O_WRONLY | os.O_CREAT | os.O_EXCL), "wb") as file:
            file.write(data)
            file.flush()
            os.fsync(file.fileno())
        os.replace(hidden, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(hidden)
        raise


def create_locked(path: Path) -> int:
    """A new file at `path`, locked while the descriptor is open: its owner's sign of life."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL | _NOFOLLOW, 0o600)
    try:
        if fcntl is not None:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BaseException:
        os.close(fd)
        with contextlib.suppress(OSError):
            os.unlink(path)
        raise
    return fd


def lock_if_ownerless(path: Path) -> int | None:
    """The file at `path` opened by the rule and locked here, when no live process holds its
    lock; None when one does or no lock can be had (no telling, so it is left alone)."""
    fd = open_private(path, os.O_RDWR)
    with contextlib.suppress(OSError):
        if fcntl is not None:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return fd
    os.close(fd)
    return None


def owner_alive(path: Path) -> bool:
    """Whether a live process holds the lock on the file at `path` (True when that cannot be told)."""
    try:
        fd = lock_if_ownerless(path)
    except (FileNotFoundError, UntrustedFile):
        return False
    except OSError:
        return True
    if fd is not None:
        os.close(fd)
    return fd is None


def is_file_or_link(path: Path) -> bool:
    """A regular file or a symbolic link (to anything), as the directory lists it."""
    try:
        mode = os.lstat(path).st_mode
    except OSError:
        return False
    return stat.S_ISREG(mode) or stat.S_ISLNK(mode)


@dataclass
class Refusals:
    """What the rule refused to one user of the persistence directory, for status."""

    problem: str | None = None
    set_aside: int = 0
    folder: str | None = None
