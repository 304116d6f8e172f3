"""The checkpoint: what the crash record holds besides the running cell, kept current. Once a
second it notes the kernel alive with its memory and cgroup, and writes the facts a death's event
needs when they changed; the session, whose counts must be exact, is written as it changes."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from ..report import environment
from ..report.payloads import redact
from . import memory
from .record import ACTIVE, DOCUMENT_BYTES, INLINE_SOURCE_BYTES, NO_SESSION, PAUSED, CrashRecord

if TYPE_CHECKING:
    from ..client import Client
    from ..report.cells import CellIndex
    from ..report.events import CellRun

MAX_CELL_FILES = 200  # code files of cells named in the document, newest kept
MAX_CELL_LINES_BYTES = 32 * 1024  # source of earlier cells kept for code windows, newest first


class Checkpoint:
    """What keeps `record` current for `client` and the shell's cells: checkpoint() once a
    second, session_changed() as a client listener."""

    def __init__(self, record: CrashRecord, client: Client, cells: CellIndex | None,
                 cell_files: Callable[[], list[str]] = list,
                 cgroup: memory.FollowedCgroup | None = None) -> None:
        self.record = record
        self.client = client
        self.cells = cells
        self.cell_files = cell_files  # the code files of the cells run, oldest first
        self.cgroup = cgroup or memory.FollowedCgroup()
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
                      rss=memory.resident_bytes(), peak_rss=memory.peak_resident_bytes(),
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
