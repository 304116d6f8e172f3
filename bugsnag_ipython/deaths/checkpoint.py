"""The checkpoint: what the crash record holds besides the running cell, kept current. Once a
second it notes the kernel alive with its memory, and writes the facts a death's event needs when
they changed; the session, whose counts must be exact, is written as it changes.

The OOM killer leaves no trace in the process it kills, but the kernel's memory cgroup counts the
kills: the count when a kernel started, against the count after it died, tells."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

from ..report import environment
from ..report.payloads import redact
from .record import ACTIVE, DOCUMENT_BYTES, INLINE_SOURCE_BYTES, NO_SESSION, PAUSED, CrashRecord

if TYPE_CHECKING:
    from ..client import Client
    from ..report.cells import CellIndex
    from ..report.events import CellRun

MAX_CELL_FILES = 200  # code files of cells named in the document, newest kept
MAX_CELL_LINES_BYTES = 32 * 1024  # source of earlier cells kept for code windows, newest first
UNLIMITED = 1 << 62  # cgroup v1 shows "no limit" as a page-rounded 2**63 - 1
# The files of a memory cgroup by version: the OOM-kill counter, the usage, the limit.
_FILES = {1: ("memory.oom_control", "memory.usage_in_bytes", "memory.limit_in_bytes"),
          2: ("memory.events", "memory.current", "memory.max")}


class Checkpoint:
    """What keeps `record` current for `client` and the shell's cells: checkpoint() once a
    second, session_changed() as a client listener."""

    def __init__(self, record: CrashRecord, client: Client, cells: CellIndex | None,
                 cell_files: Callable[[], list[str]] = list,
                 cgroup: FollowedCgroup | None = None) -> None:
        self.record = record
        self.client = client
        self.cells = cells
        self.cell_files = cell_files  # the code files of the cells run, oldest first
        self.cgroup = cgroup or FollowedCgroup()
        self._written = b""
        self._long_for: CellRun | None = None  # the cell whose long source was stored

    def session_changed(self) -> None:
        """Write the current session and whether events are sent: a client listener."""
        record = self.record
        if record.closed:
            return
        client = self.client
        config = client.config
        sending = bool(config.api_key) and config.release_stage_enabled
        session = client.current_session()
        if session is None:
            record.session(state=NO_SESSION, sending=sending)
        else:
            record.session(state=PAUSED if session.paused else ACTIVE, id=session.id,
                           started_at=session.started_at, handled=session.handled,
                           unhandled=session.unhandled, sending=sending)

    def checkpoint(self) -> None:
        """Note the kernel alive now, with its memory; write the facts if they changed."""
        record = self.record
        if record.closed:
            return
        self.cgroup.follow()
        cgroup = self.cgroup.cgroup
        record.vitals(seen_monotonic=time.monotonic(), seen_wall=time.time(),
                      rss=resident_bytes(), peak_rss=peak_resident_bytes(),
                      cgroup_usage=cgroup.usage() if cgroup else -1,
                      cgroup_limit=cgroup.limit() if cgroup else -1)
        run = self.client.cell
        if run is not None and run != self._long_for:  # a new CellRun each read: compare fields
            self._long_for = run
            if len(run.source.encode("utf-8", "surrogatepass")) > INLINE_SOURCE_BYTES:
                record.long_source(run.execution_count or 0, run.started_monotonic, run.source)
        data = _fitted(self.facts())
        if data is not None and data != self._written:
            record.document(data)
            self._written = data

    def facts(self) -> dict[str, Any]:
        client = self.client
        config = client.config
        keys = config.redacted_keys
        facts: dict[str, Any] = {
            "app": {"releaseStage": config.release_stage, "version": client.app_version},
            "notebook": self.cells.notebook_path(look=False) if self.cells is not None else None,
            "projectRoot": config.project_root,
            "sendCode": config.send_code,
            "kernel": environment.kernel_facts(),
            "user": dict(client.user),
            "context": client.context,
            "metadata": redact(client.metadata.snapshot(), keys),
            "breadcrumbs": list(client.breadcrumbs.snapshot(keys)),
            "cells": self._cell_files(config.send_code),
        }
        cgroup, baseline = self.cgroup.cgroup, self.cgroup.baseline
        if cgroup is not None and baseline is not None:
            facts["oomKill"] = {"file": str(cgroup.oom_file), "count": baseline,
                                "cgroupVersion": cgroup.version}
        return facts

    def _cell_files(self, send_code: bool) -> dict[str, Any]:
        """Code file -> [cell identity, execution count, source or None], newest last: what names
        a fault dump's frames in cells that ran before the one that crashed."""
        cells = self.cells
        if cells is None:
            return {}
        files = self.cell_files()[-MAX_CELL_FILES:]
        named: dict[str, Any] = {}
        budget = MAX_CELL_LINES_BYTES if send_code else 0
        for filename in reversed(files):
            ref = cells(filename, look=False)  # the first report looks for a run's notebook
            if ref is None:
                continue
            source = "".join(ref.lines)
            kept = len(source) <= budget
            budget -= len(source) if kept else 0
            named[filename] = [ref.identity, ref.execution_count, source if kept else None]
        return dict(reversed(list(named.items())))


def _fitted(facts: dict[str, Any]) -> bytes | None:
    """The facts as JSON that fits the record: the oldest breadcrumbs go first, then the
    earlier cells' sources, then the metadata; None if even that is too big."""
    for _ in range(12):
        data = json.dumps(facts, separators=(",", ":"), default=str).encode("utf-8", "replace")
        if len(data) <= DOCUMENT_BYTES:
            return data
        crumbs = facts["breadcrumbs"]
        if crumbs:
            facts["breadcrumbs"] = crumbs[len(crumbs) // 2 + 1 :]
        elif any(entry[2] is not None for entry in facts["cells"].values()):
            facts["cells"] = {name: [e[0], e[1], None] for name, e in facts["cells"].items()}
        else:
            facts["metadata"] = {}
            facts["cells"] = {}
    return None


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
        self._membership: str | None = None
        self.cgroup: Cgroup | None = None
        self.baseline: int | None = None
        self.follow()

    def follow(self) -> bool:
        """Look again; True when the process is in another memory cgroup than last seen."""
        try:
            with open(os.path.join(self._proc, "self", "cgroup")) as file:
                membership: str | None = file.read()
        except OSError:
            membership = None
        if membership == self._membership:
            return False
        self._membership = membership
        found = _cgroup_of(membership, self._fs) if membership is not None else None
        if found == self.cgroup:
            return False  # another controller's cgroup changed, not the memory one
        self.cgroup = found
        self.baseline = found.oom_kills() if found is not None else None
        return True


def _cgroup_of(membership: str, fs: str) -> Cgroup | None:
    """v1's memory controller of /proc's lines, else v2's unified one."""
    v1 = v2 = None
    for line in membership.splitlines():
        _, controllers, path = line.split(":", 2) if line.count(":") >= 2 else ("", "", "")
        if "memory" in controllers.split(","):
            v1 = path
        elif controllers == "":
            v2 = path
    candidates: list[tuple[int, Path]] = []
    if v1 is not None:
        candidates += [(1, Path(fs, "memory", v1.lstrip("/"))), (1, Path(fs, "memory"))]
    if v2 is not None:
        candidates += [(2, Path(fs, v2.lstrip("/"))), (2, Path(fs))]
    for version, folder in candidates:
        if (folder / _FILES[version][0]).is_file():
            return Cgroup(version, folder)
    return None


def oom_kills_at(path: str) -> int | None:
    """The `oom_kill N` count of a cgroup's counter file; a file of another name is not read (a
    dead kernel's record names it)."""
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
        with open("/proc/self/statm", "rb") as file:
            fields = file.read().split()
        return int(fields[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return -1


def peak_resident_bytes() -> int:
    """The largest resident set the process has had (-1 if unknown)."""
    try:
        import resource

        return int(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss) * 1024  # KiB on Linux
    except (ImportError, OSError):
        return -1


def _number(path: Path) -> int:
    try:
        text = path.read_text().strip()
    except OSError:
        return -1
    return int(text) if text.isdigit() else -1
