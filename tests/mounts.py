"""Small tmpfs filesystems for tests of a full disk (mounting needs root), and filling one."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="mounting a tmpfs needs root")

# Writes zeros into `path` until the filesystem has not one byte left: big chunks first, then
# pages, then single bytes. Run as it is in a test process or in a kernel's cell.
FILL = """
import errno as _errno
with open({path!r}, "ab", buffering=0) as _file:
    for _chunk in (1 << 20, 4096, 1):
        _block = bytes(_chunk)
        while True:
            try:
                _file.write(_block)
            except OSError as _error:
                if _error.errno != _errno.ENOSPC:
                    raise
                break
"""


@contextmanager
def small_tmpfs(where: Path, size: str) -> Iterator[Path]:
    """A tmpfs of `size` (as mount's `size=` takes it) mounted at `where`, unmounted after."""
    where.mkdir(parents=True, exist_ok=True)
    subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size},mode=0700", "tmpfs", str(where)],
                   check=True)
    try:
        yield where
    finally:
        subprocess.run(["umount", "-l", str(where)], check=False)


def fill(path: Path) -> None:
    """Fill the filesystem holding `path` (a file made there) to the last byte."""
    exec(FILL.format(path=str(path)), {})
    assert free_bytes(path.parent) == 0


def free_bytes(folder: Path) -> int:
    facts = os.statvfs(folder)
    return facts.f_bavail * facts.f_frsize
