"""Where a kernel keeps its crash record: the persistence directory's `kernels/`, unless that is on a
network or FUSE filesystem (a store into the mapping can SIGBUS there, and a lost flock() makes a live
kernel's record look dead); then a private folder in memory named by the directory's digest:
`$XDG_RUNTIME_DIR/bugsnag-ipython/<digest>/kernels` or `/dev/shm/bugsnag-ipython-<uid>/<digest>/kernels`."""

from __future__ import annotations

import contextlib
import os
import re
import stat
from pathlib import Path

from ..core.private_files import RefusedDirectory, make_private

DIRECTORY = "kernels"
MOUNTINFO = "/proc/self/mountinfo"
SHARED_MEMORY = "/dev/shm"
NETWORK_TYPES = frozenset({
    "nfs", "nfs4", "cifs", "smb3", "smbfs", "9p", "ceph", "glusterfs", "lustre", "afs", "gpfs",
    "fuse", "fuseblk",
})
_ESCAPE = re.compile(r"\\([0-7]{3})")  # mountinfo's octal escapes of space, tab, newline, backslash


class NoRecord(OSError):
    """The kernel runs without a crash record; the text is the one sentence that says why."""


def filesystem_of(path: str, mountinfo: str) -> str | None:
    """The filesystem type at the longest mount point holding the real `path`, in mountinfo's text."""
    longest, found = -1, None
    for line in mountinfo.splitlines():
        before, separator, after = line.partition(" - ")
        fields, kind = before.split(" "), after.split(" ", 1)[0]
        if not (separator and len(fields) >= 5 and kind):
            continue
        point = _ESCAPE.sub(lambda m: chr(int(m[1], 8)), fields[4])
        holds = point == "/" or path == point or path.startswith(point.rstrip("/") + "/")
        if holds and len(point) >= longest:
            longest, found = len(point), kind
    return found


def is_network(fstype: str) -> bool:
    """Whether `fstype` is a network or FUSE filesystem, where the record is not kept."""
    return fstype in NETWORK_TYPES or fstype.startswith("fuse.")


def digest(directory: str | os.PathLike[str]) -> str:
    """A short digest of the persistence directory's real path: its runtime folder's name."""
    import hashlib  # here, not at load: the record is placed by the background start-up

    return hashlib.sha256(os.fsencode(os.path.realpath(Path(directory).expanduser()))).hexdigest()[:16]


def runtime_bases() -> list[Path]:
    """The folders in memory that may hold runtime folders, the one used now first."""
    bases = [Path(SHARED_MEMORY) / f"bugsnag-ipython-{os.geteuid()}"]
    runtime = os.environ.get("XDG_RUNTIME_DIR", "")
    with contextlib.suppress(OSError):  # none, or gone
        facts = os.stat(runtime)
        if os.path.isabs(runtime) and stat.S_ISDIR(facts.st_mode) and facts.st_uid == os.geteuid():
            bases.insert(0, Path(runtime) / "bugsnag-ipython")
    return bases


def _private(base: Path, directory: str | os.PathLike[str], *, create: bool) -> Path:
    """`base/<digest>/kernels`, each level checked (made, with `create`) 0700 and this user's."""
    if os.path.islink(base):  # /dev/shm is everyone's: a link planted there is not followed
        raise NotADirectoryError(f"{base} is a symbolic link")
    folder = base / digest(directory) / DIRECTORY
    for level in (base, folder.parent, folder):
        try:
            make_private(level, create=create, root=False)
        except RefusedDirectory:
            raise PermissionError(f"{level} is another user's or cannot be made private") from None
    return folder


def live_folder(directory: str | os.PathLike[str]) -> tuple[Path, str]:
    """The folder for this kernel's record and how a sentence names it; raises NoRecord if none."""
    root = Path(directory).expanduser()
    try:
        with open(MOUNTINFO, encoding="utf-8", errors="surrogateescape") as file:
            fstype = filesystem_of(os.path.realpath(root), file.read())
    except OSError:
        fstype = None  # the mounts cannot be read: taken for local
    if fstype is None or not is_network(fstype):
        return root / DIRECTORY, f"the persistence directory {root}"
    reasons = []
    for base in runtime_bases():
        try:
            folder = _private(base, root, create=True)
        except OSError as error:  # a sentence of _private's
            reasons.append(str(error))
            continue
        return folder, f"the runtime folder {folder} (the persistence directory {root} is on {fstype})"
    raise NoRecord(
        f"Kernel deaths are not recorded: the persistence directory {root} is on a network "
        f"filesystem ({fstype}) and no private runtime folder can be made for the crash record "
        f"({'; '.join(reasons)}); set BUGSNAG_PERSISTENCE_DIRECTORY to a directory on a local disk."
    )


def record_folders(directory: str | os.PathLike[str]) -> list[Path]:
    """The folders where a kernel of this persistence directory may have left its record."""
    folders = [Path(directory).expanduser() / DIRECTORY]
    for base in runtime_bases():
        try:
            folders.append(_private(base, directory, create=False))
        except OSError:
            continue  # none there, or not this user's alone: nothing of this kernel's to read
    return folders
