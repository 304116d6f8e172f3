"""A memory-limited cgroup for tests of kernels the OOM killer ends (cgroup v1, root only)."""

from __future__ import annotations

import contextlib
import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

MEMORY_V1 = Path("/sys/fs/cgroup/memory")
LIMIT_BYTES = 256 * 1024 * 1024


@pytest.fixture
def limited_cgroup() -> Iterator[Path]:
    """A new cgroup v1 memory cgroup with a 256 MB limit (and no swap); whatever is still in it
    at the end goes back to this process's cgroup, and the cgroup is removed."""
    if os.geteuid() != 0:
        pytest.skip("making a memory cgroup needs root")
    if not (MEMORY_V1 / "memory.oom_control").is_file():
        pytest.skip("no cgroup v1 memory controller at /sys/fs/cgroup/memory")
    folder = MEMORY_V1 / f"bugsnag-ipython-test-{uuid.uuid4().hex[:12]}"
    folder.mkdir()
    try:
        (folder / "memory.limit_in_bytes").write_text(str(LIMIT_BYTES))
        if (folder / "memory.memsw.limit_in_bytes").exists():
            (folder / "memory.memsw.limit_in_bytes").write_text(str(LIMIT_BYTES))
        yield folder
    finally:
        own = next(line.split(":", 2)[2] for line in Path("/proc/self/cgroup").read_text().splitlines()
                   if "memory" in line.split(":", 2)[1].split(","))
        for pid in (folder / "cgroup.procs").read_text().split():
            with contextlib.suppress(OSError):  # ended meanwhile
                (MEMORY_V1 / own.lstrip("/") / "cgroup.procs").write_text(pid)
        folder.rmdir()
