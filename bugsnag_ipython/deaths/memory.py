"""The kernel's memory and its cgroup's OOM-kill counter, as Linux shows them (None or -1 where it
does not say). The OOM killer leaves no trace in the process it kills, but its cgroup counts the
kills: the count when a kernel started, against the count after it died, tells."""

from __future__ import annotations

import os
import resource
from pathlib import Path
from typing import NamedTuple

UNLIMITED = 1 << 62  # cgroup v1 shows "no limit" as a page-rounded 2**63 - 1
# The files of a memory cgroup by version: the OOM-kill counter, the usage, the limit.
_FILES = {1: ("memory.oom_control", "memory.usage_in_bytes", "memory.limit_in_bytes"),
          2: ("memory.events", "memory.current", "memory.max")}


class Cgroup(NamedTuple):
    """The memory files of one cgroup."""

    version: int
    folder: Path

    @property
    def oom_file(self) -> Path:
        return self.folder / _FILES[self.version][0]

    def oom_kills(self) -> int | None:
        return oom_kills_at(str(self.oom_file))

    def usage(self) -> int:
        return _number(self.folder / _FILES[self.version][1])

    def limit(self) -> int:
        found = _number(self.folder / _FILES[self.version][2])
        return -1 if found >= UNLIMITED else found


class FollowedCgroup:
    """This process's memory cgroup, followed: a kernel moved into another one (a memory limit put
    on it) has its OOM kill counted there. `baseline`: the count when the process was first seen in it."""

    def __init__(self, proc: str = "/proc", fs: str = "/sys/fs/cgroup") -> None:
        self._proc = proc
        self._fs = fs
        self.cgroup: Cgroup | None = None
        self.baseline: int | None = None
        self.follow()

    def follow(self) -> bool:
        """Look again; True when the process is in another memory cgroup than last seen."""
        try:
            membership = Path(self._proc, "self", "cgroup").read_text()
        except OSError:
            membership = ""
        v1 = v2 = None  # v1's memory controller, else v2's unified one
        for line in membership.splitlines():
            _, controllers, path = line.split(":", 2) if line.count(":") >= 2 else ("", "", "")
            if "memory" in controllers.split(","):
                v1 = path
            elif controllers == "":
                v2 = path
        candidates: list[tuple[int, Path]] = []
        if v1 is not None:
            candidates += [(1, Path(self._fs, "memory", v1.lstrip("/"))), (1, Path(self._fs, "memory"))]
        if v2 is not None:
            candidates += [(2, Path(self._fs, v2.lstrip("/"))), (2, Path(self._fs))]
        found = next((Cgroup(version, folder) for version, folder in candidates
                      if (folder / _FILES[version][0]).is_file()), None)
        if found == self.cgroup:
            return False  # the same one, or only another controller's cgroup changed
        self.cgroup = found
        self.baseline = found.oom_kills() if found is not None else None
        return True


def oom_kills_at(path: str) -> int | None:
    """The `oom_kill N` count in a cgroup's counter file; a path of another name is not read."""
    if not path.endswith(("/memory.oom_control", "/memory.events")):
        return None
    try:
        text = Path(path).read_text()
    except OSError:
        return None
    for line in text.splitlines():
        name, _, value = line.partition(" ")
        if name == "oom_kill" and value.strip().isdigit():
            return int(value)
    return None


def resident_bytes() -> int:
    """The process's resident set now (-1 if unknown)."""
    try:
        fields = Path("/proc/self/statm").read_bytes().split()
        return int(fields[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return -1


def peak_resident_bytes() -> int:
    """The largest resident set the process has had (-1 if unknown)."""
    try:
        return int(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss) * 1024  # KiB on Linux
    except OSError:
        return -1


def _number(path: Path) -> int:
    try:
        text = path.read_text().strip()
    except OSError:
        return -1
    return int(text) if text.isdigit() else -1
