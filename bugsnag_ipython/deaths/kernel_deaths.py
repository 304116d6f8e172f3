"""Kernel deaths, the source: this kernel's crash record and its watcher, the mark of a normal end,
the report of dead kernels' records once the kernel is idle, and the checkpoint that keeps it current."""

from __future__ import annotations

import atexit
import contextlib
import json
import os
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..core import forkguard
from ..core.private_files import RefusedDirectory, make_private, say_once
from ..report import environment
from ..report.payloads import redact
from ..sources import Source

if TYPE_CHECKING:
    from ..client import Client
    from ..report.cells import CellIndex
    from ..sources.cell_runs import CellRuns
    from .memory import FollowedCgroup
    from .record import CrashRecord
    from .watcher import WatcherProcess

INTERVAL = 1.0  # seconds between checkpoints of the record
SCAN_DELAY = 1.0  # seconds after the load before dead kernels are looked for
SCAN_DELAY_MAX = 10.0  # ...waiting at most this long for a running cell to end
SCAN_POLL = 0.05
LOAD_WAIT = 1.0  # seconds the watcher's start waits at most for the load to be over
MAX_CELL_FILES = 200  # code files of cells named in the document, newest kept
MAX_CELL_LINES_BYTES = 32 * 1024  # source of earlier cells kept for code windows, newest first


class KernelDeaths(Source):
    """One daemon thread makes the record, hands it to the cell hooks (`cell_runs.crash_record`),
    looks for dead kernels once the kernel is idle, then keeps the record current once a second."""

    def __init__(self, client: Client, shell: Any, cells: CellIndex | None,
                 cell_runs: CellRuns | None = None, *, interval: float = INTERVAL) -> None:
        super().__init__(client)
        self.shell = shell
        self.cells = cells
        self.cell_runs = cell_runs
        self.interval = interval
        self.record: CrashRecord | None = None
        self.cgroup: FollowedCgroup  # this process's memory cgroup, followed from the record's making
        self.watcher: WatcherProcess | None = None  # this kernel's watcher, while it runs
        self.scanned = threading.Event()  # set once earlier kernels were looked for
        self.problem: str | None = None  # why there is no record, in one sentence, for status
        self.ending_since: float | None = None  # when a normal end began (monotonic), for the exit flush
        self.loaded = threading.Event()  # the load is over: the watcher's start waits for it
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._watcher_refused = False  # it could not start: not tried again
        self._written = b""  # the facts last written

    def install(self) -> None:
        self.loaded.clear()
        self._stop = stop = threading.Event()
        self.scanned = threading.Event()
        self.ending_since = None
        self.client.crash_records.problem = None  # the directory is looked at again
        with contextlib.suppress(Exception):
            self.shell.observe(self._on_exit_now, names="exit_now")
            if self.shell.exit_now:  # loaded while the kernel is already ending
                self.ending()
        atexit.register(self.at_exit)
        threading.Thread(target=self._run, args=(stop,), name="bugsnag-crash-record",
                         daemon=True).start()

    def uninstall(self) -> None:
        """Stop recording: the record goes, as at a normal end."""
        atexit.unregister(self.at_exit)
        with contextlib.suppress(Exception):
            self.shell.unobserve(self._on_exit_now, names="exit_now")
        self._close()

    def at_exit(self) -> None:
        """The process ends normally: its record goes."""
        try:
            self.ending()
            self._close()
        except Exception:
            self.internal_failure("exit")

    def _close(self) -> None:
        with self._lock:
            self._stop.set()
            record, self.record = self.record, None
            if self.cell_runs is not None:
                self.cell_runs.crash_record = None
            with contextlib.suppress(ValueError):
                self.client.listeners.remove(self.session_changed)
            if record is not None:
                record.close(remove=True)  # the watcher, woken, finds it removed and exits
            self._stop_watcher()
            if self.problem in self.client.problems:
                self.client.problems.remove(self.problem)
            self.problem = None

    def ending(self) -> None:
        """A normal end began (exit, a shutdown request): nothing after it is a death."""
        if self.ending_since is None:  # noted first: _open looks at it after handing the record over
            self.ending_since = self.client.tracker.monotonic()
        record = self.record
        if record is not None:
            record.mark_ended()

    def _on_exit_now(self, change: Any) -> None:
        with contextlib.suppress(Exception):
            if change.get("new"):
                self.ending()

    def session_changed(self) -> None:
        """A client listener: write the current session and whether events are sent."""
        record, client = self.record, self.client
        if record is not None and not record.closed:
            sending = bool(client.config.api_key) and client.config.release_stage_enabled
            record.session(client.current_session(), sending=sending)

    def checkpoint(self) -> None:
        """Note the kernel alive now, with its memory; write the facts if they changed."""
        from .memory import peak_resident_bytes, resident_bytes
        from .record import INLINE_SOURCE_BYTES

        record = self.record
        if record is None or record.closed:
            return
        self.cgroup.follow()
        cgroup = self.cgroup.cgroup
        record.vitals(seen_monotonic=time.monotonic(), seen_wall=time.time(),
                      rss=resident_bytes(), peak_rss=peak_resident_bytes(),
                      cgroup_usage=cgroup.usage() if cgroup else -1,
                      cgroup_limit=cgroup.limit() if cgroup else -1)
        run = self.client.cell
        if run is not None and len(run.source.encode("utf-8", "surrogatepass")) > INLINE_SOURCE_BYTES:
            record.long_source(run.execution_count or 0, run.started_monotonic, run.source)
        data = _fitted(self._facts())
        if data is not None and data != self._written:
            record.document(data)
            self._written = data

    def _facts(self) -> dict[str, Any]:
        client, config = self.client, self.client.config
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
        """Code file -> [cell identity, execution count, source or None]: names a fault dump's frames."""
        cells = self.cells
        if cells is None:
            return {}
        # ipykernel's and IPython's compiler: code file -> execution count, oldest first.
        mapping = getattr(getattr(self.shell, "compile", None), "_filename_map", None)
        files = list(mapping)[-MAX_CELL_FILES:] if isinstance(mapping, dict) else []
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

    def _run(self, stop: threading.Event) -> None:
        directory = self._open(stop)
        if directory is None:
            self.scanned.set()
            return
        started = time.monotonic()
        while not stop.is_set():
            self._keep_watcher(directory)
            try:
                # An exit waits for a checkpoint rather than closing the record under it; a fork
                # waits too, as the checkpoint takes the client's locks (see forkguard).
                with self._lock, forkguard.no_fork:
                    self.checkpoint()
            except Exception as error:
                self.client.once.say("checkpoint", f"the crash record could not be updated ({error}).")
            waited = time.monotonic() - started
            if not self.scanned.is_set() and waited >= SCAN_DELAY and (
                not self.client.tracker.in_foreground or waited >= SCAN_DELAY_MAX
            ):
                self._scan(directory)
            stop.wait(self.interval if self.scanned.is_set() else SCAN_POLL)

    def _keep_watcher(self, directory: str) -> None:
        """Start the watcher when the option is on and none runs yet, stop it when it is off."""
        from .watcher import NEXT_KERNEL, WatcherProcess

        wanted, watcher = self.client.config.watch_kernel_deaths, self.watcher
        if watcher is not None and not wanted:
            self._stop_watcher()
        elif watcher is not None and watcher.process.poll() is not None:
            self.client.once.say("watcher-ended", f"The kernel-death watcher ended early; {NEXT_KERNEL}")
        if watcher is not None or not wanted or self._watcher_refused:
            return
        self.loaded.wait(LOAD_WAIT)
        with self._lock:
            record = self.record
            if record is None or self._stop.is_set():
                return
            try:
                self.watcher = watcher = WatcherProcess(self.client, record, directory)
            except OSError as error:
                self._watcher_refused = True
                self.client.once.say("watcher", f"The kernel-death watcher cannot start ({error}); "
                                      + NEXT_KERNEL)
                return
            self.client.listeners.append(watcher.options_changed)

    def _stop_watcher(self) -> None:
        watcher, self.watcher = self.watcher, None
        if watcher is not None:
            with contextlib.suppress(ValueError):
                self.client.listeners.remove(watcher.options_changed)
            watcher.stop()

    def _open(self, stop: threading.Event) -> str | None:
        """Make the record and hand it to the cell hooks; the persistence directory, or None."""
        client = self.client
        try:
            with forkguard.no_fork:  # here, not at load: the load stays cheap (platformdirs, too)
                from ..core.persistence import persistence_directory
                from .memory import FollowedCgroup
                from .place import DIRECTORY
                from .record import CrashRecord

                directory = persistence_directory(client.config.persistence_directory)
            make_private(directory)  # the trust rule before anything is made there
            make_private(os.path.join(directory, DIRECTORY), root=False)
            record = CrashRecord(directory, launched_wall=self._launched_wall(),
                                 launched_monotonic=client.launched_at)
        except RefusedDirectory as refused:  # nothing written or read there; said once for all its users
            say_once(refused)
            client.crash_records.problem = str(refused)
            return None
        except OSError as error:  # NoRecord (no room, or no safe place): said in the log, status and panel
            sentence = str(error)
            client.once.say(f"no-crash-record {sentence}", sentence)
            with self._lock:
                if not stop.is_set() and self.problem is None:
                    self.problem = sentence
                    client.problems.append(sentence)
            return None
        except Exception as error:
            client.once.say("crash-record", f"kernel deaths cannot be recorded ({error}).")
            return None
        try:
            record.catch_faults()
        except (OSError, RuntimeError, ValueError) as error:
            client.once.say("faulthandler", f"fatal signals will be reported without stacks ({error}).")
        with self._lock:
            if stop.is_set():
                record.close(remove=True)
                return None
            self.record, self.cgroup = record, FollowedCgroup()
            self._written = b""  # of an earlier record's
            if self.ending_since is not None:  # a shutdown request came while the record was being made
                record.mark_ended()
            self.session_changed()
            client.listeners.append(self.session_changed)
            if self.cell_runs is not None:
                self.cell_runs.crash_record = record
            # A cell that started before the hand-over: the hook sets client.cell before it looks
            # for a record, this thread looks after handing it over, so one of the two stores it.
            run = client.cell
            if run is not None:
                record.cell_started(run)
        return directory

    def _launched_wall(self) -> float:
        return time.time() - (time.monotonic() - self.client.launched_at)

    def _scan(self, directory: str) -> None:
        """Report the deaths of earlier kernels, then say the newest recent death of their notes."""
        try:
            from .place import DIRECTORY
            from .scan import RECENT_SECONDS, report_dead_kernels, take_notes

            record = self.record
            reported = report_dead_kernels(self.client, directory, record)
            if record is not None:
                since = self._launched_wall() - RECENT_SECONDS
                said = take_notes(Path(directory) / DIRECTORY, record.token, since, reported)
                if said is not None:
                    self.client.previous_kernel_died(said)
        except Exception as error:
            self.client.once.say("kernel-deaths", f"earlier kernels' deaths could not be read ({error}).")
        finally:
            self.scanned.set()


def _fitted(facts: dict[str, Any]) -> bytes | None:
    """The facts as JSON that fits the record (old breadcrumbs, cells' sources, metadata dropped), or None."""
    from .record import DOCUMENT_BYTES

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
