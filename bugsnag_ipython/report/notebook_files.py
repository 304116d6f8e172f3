"""Reading notebook files nobody vouches for: bounded, never blocking, one file at a time.

A run's notebook is named by a command line or a dashboard's request, or found among the
`.ipynb` files of the kernel's folder. Any of them may be a link (to itself, to a device, out of
the folder), a FIFO, a directory, a file the kernel may not read, a file of gigabytes, or JSON
nested deep enough to exhaust the parser. Each file is read under the same rules, so that such
a file is passed over and the others are still considered:

- the open never blocks (O_NONBLOCK: a FIFO opens at once) and never loops (the system refuses
  a chain of links with ELOOP after a few dozen);
- only a regular file is read, checked on the open file itself, and its size is checked before
  the read, which reads no more than the limit;
- in a folder search, a link is followed only to a file inside that folder;
- any error a hostile document raises while parsed (RecursionError, ValueError, UnicodeError,
  MemoryError) makes that one file unreadable.
"""

from __future__ import annotations

import json
import os
import stat
from dataclasses import dataclass
from typing import Any

# One folder search looks at this many directory entries, and examines (one lstat each, so that
# the newest, read first, are known) this many `.ipynb` among them: 0.1 s for 10,000 of them.
MAX_LISTED = 100_000
MAX_EXAMINED = 10_000

_OPEN_FLAGS = os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0) | getattr(os, "O_BINARY", 0)
_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)


@dataclass(frozen=True)
class FolderEntry:
    """A notebook of a folder: where it is read from, when it last changed, its size."""

    path: str
    modified: float
    size: int


def read_bounded(path: str, limit: int, *, follow: bool = True) -> bytes | None:
    """The bytes of the regular file at `path`, or None when it is no regular file, is over
    `limit` bytes, or cannot be opened at once. Without `follow`, a link is not opened."""
    try:
        descriptor = os.open(path, _OPEN_FLAGS | (0 if follow else _NOFOLLOW))
    except (OSError, ValueError):  # ValueError: a NUL in the path
        return None
    try:
        status = os.fstat(descriptor)
        if not stat.S_ISREG(status.st_mode) or status.st_size > limit:
            return None
        chunks, left = [], limit + 1  # a file that grew since fstat is still read no further
        while left > 0:
            chunk = os.read(descriptor, min(left, 1 << 20))
            if not chunk:
                break
            chunks.append(chunk)
            left -= len(chunk)
        raw = b"".join(chunks)
        return raw if len(raw) <= limit else None
    except (OSError, MemoryError):
        return None
    finally:
        os.close(descriptor)


def parse_json(raw: bytes) -> Any:
    """The JSON document `raw` holds, or None when it holds none the parser can finish."""
    try:
        return json.loads(raw)
    except (RecursionError, ValueError, UnicodeError, MemoryError):
        # ValueError includes JSONDecodeError and an integer of too many digits.
        return None


def folder_notebooks(directory: str) -> list[FolderEntry]:
    """The `.ipynb` regular files of `directory` (links to one inside it included), newest
    first: the first MAX_EXAMINED of them among its first MAX_LISTED entries."""
    try:
        root = os.path.realpath(directory)
        inside = os.path.join(root, "")
        found: list[FolderEntry] = []
        with os.scandir(directory) as listing:
            for listed, entry in enumerate(listing):
                if listed >= MAX_LISTED or len(found) >= MAX_EXAMINED:
                    break
                if entry.name.endswith(".ipynb"):
                    notebook = _regular(entry, inside)
                    if notebook is not None:
                        found.append(notebook)
    except (OSError, ValueError):
        return []
    found.sort(key=lambda notebook: notebook.modified, reverse=True)
    return found


def _regular(entry: os.DirEntry[str], inside: str) -> FolderEntry | None:
    """The entry as a regular file inside the folder (a link resolved), else None."""
    try:
        status = entry.stat(follow_symlinks=False)
        path = entry.path
        if stat.S_ISLNK(status.st_mode):
            path = os.path.realpath(entry.path)  # a loop resolves to a path the open refuses
            if not path.startswith(inside):
                return None
            status = os.stat(path, follow_symlinks=False)
        if not stat.S_ISREG(status.st_mode):
            return None
        return FolderEntry(path, status.st_mtime, status.st_size)
    except (OSError, ValueError):
        return None
