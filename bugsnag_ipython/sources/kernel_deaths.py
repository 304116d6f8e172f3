"""Kernel deaths: a kernel that dies without running its exit code is reported by the next.

This source keeps the running kernel's crash record (crash_record.py, kept current by
crash_checkpoint.py), points faulthandler at the record's fault file, and marks a normal end
(a shutdown request, `exit`, the process's exit). At launch it claims the records of dead
kernels (dead_kernels.py) and hands each death to the client as one `KernelDied` event,
counted against the session that was current in the dead kernel.

The rules (README, "Kernel deaths"):
- a kernel that began a normal end is never reported, whatever ends the process after it;
- a fatal signal (a fault dump was written) is reported, whether a cell was running or not;
- a kernel that vanished without a fault dump (SIGKILL, the OOM killer, `os._exit`) is
  reported only if a cell was running, as bugsnag-cocoa reports only foreground terminations:
  an idle kernel killed by a reboot, `docker stop` or a culler lost no work in progress;
- a kernel that had no API key, or whose release stage was not enabled, sent nothing while
  it lived, and its death is not sent either.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..core import forkguard
from . import Source

if TYPE_CHECKING:
    from ..client import Client
    from ..report.cells import CellIndex
    from .cell_runs import CellRuns
    from .crash_checkpoint import Checkpoint
    from .crash_record import CrashRecord
    from .death_notes import DeathNote
    from .death_watch import DeathWatch

INTERVAL = 1.0  # seconds between checkpoints of the record
SCAN_DELAY = 1.0  # seconds after the load before dead kernels are looked for
SCAN_DELAY_MAX = 10.0  # ...waiting at most this long for a running cell to end
SCAN_POLL = 0.05
LOAD_WAIT = 1.0  # seconds the watcher's start waits at most for the load to be over


class KernelDeaths(Source):
    """The source: this kernel's record while it runs, and the reports of earlier deaths.

    One daemon thread does the work off the loading thread (the persistence directory may
    import platformdirs, and opening the record touches the disk): it makes the record, hands
    it to the cell hooks (`cell_runs.crash_record`), looks for dead kernels once the kernel is
    idle, then keeps the record current once a second."""

    def __init__(self, client: Client, shell: Any, cells: CellIndex | None,
                 cell_runs: CellRuns | None = None, *, interval: float = INTERVAL) -> None:
        super().__init__(client)
        self.shell = shell
        self.cells = cells
        self.cell_runs = cell_runs
        self.interval = interval
        self.record: CrashRecord | None = None
        self.checkpoint: Checkpoint | None = None
        self.watch: DeathWatch | None = None  # this kernel's watcher process, while it runs
        self.scanned = threading.Event()  # set once earlier kernels were looked for
        self.problem: str | None = None  # why there is no record, in one sentence, for status
        # When a normal end began (the monotonic clock), maybe before the record was made:
        # a shutdown request or `exit` (exit_now), else the exit itself. The exit flush counts
        # from it (notebook/extension.py).
        self.ending_since: float | None = None
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._refused: set[str] = set()  # what could not be started, not tried again
        # Set by the glue once the load is over: the watcher's start (a fork and exec, and a
        # new interpreter on the other core) waits for it, so that it never competes with it.
        self.loaded = threading.Event()
        self.spawn_seconds: float | None = None  # what starting the watcher cost this thread

    # -- install / uninstall ---------------------------------------------------------------

    def install(self) -> None:
        self.loaded.clear()
        self._stop = stop = threading.Event()
        self.scanned = threading.Event()
        self.ending_since = None
        self.client.crash_records.problem = None  # the directory is looked at again
        with contextlib.suppress(Exception):
            self.shell.observe(self._on_exit_now, names="exit_now")
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
            checkpoint, self.checkpoint = self.checkpoint, None
            if self.cell_runs is not None:
                self.cell_runs.crash_record = None
            if checkpoint is not None:
                with contextlib.suppress(ValueError):
                    self.client.listeners.remove(checkpoint.session_changed)
            if record is not None:
                record.close(remove=True)  # the watcher, woken, finds it removed and exits
            self._stop_watch()
            problem, self.problem = self.problem, None
            if problem in self.client.problems:
                self.client.problems.remove(problem)

    def ending(self) -> None:
        """A normal end began (exit, a shutdown request): nothing after it is a death."""
        # Noted first: a record handed over after this look is marked by _open, which looks
        # at the note after handing it over (one of the two marks it).
        if self.ending_since is None:
            self.ending_since = self.client.tracker.monotonic()
        record = self.record
        if record is not None:
            record.mark_ended()

    def _on_exit_now(self, change: Any) -> None:
        try:
            if change.get("new"):
                self.ending()
        except Exception:
            pass

    def _cell_files(self) -> list[str]:
        # ipykernel's and IPython's compiler: code file -> execution count, oldest first.
        mapping = getattr(getattr(self.shell, "compile", None), "_filename_map", None)
        return list(mapping) if isinstance(mapping, dict) else []

    # -- the thread -------------------------------------------------------------------------

    def _run(self, stop: threading.Event) -> None:
        from ..core.private_files import RefusedDirectory, say_once  # here: the load stays cheap

        try:
            directory = self._open(stop)
        except RefusedDirectory as refused:
            # Nothing written or read there: no record, no fault file, no scan. The sentence
            # is the directory's, said once with the outbox's and the device id's.
            say_once(refused)
            self.client.crash_records.problem = str(refused)
            self.scanned.set()
            return
        except Exception as error:
            from .record_place import NoRecord

            if isinstance(error, NoRecord):  # no room, or no safe place: the kernel runs without
                self._without_record(str(error), stop)
            else:
                self.client.warn_once("crash-record", f"kernel deaths cannot be recorded ({error}).")
            self.scanned.set()
            return
        if directory is None:
            return
        started = time.monotonic()
        while not stop.is_set():
            self._keep_watch(directory)
            try:
                # Under the lock _close takes: an exit waits the few milliseconds a checkpoint
                # takes, rather than closing the record under it (the write would fail).
                with self._lock:
                    checkpoint = self.checkpoint
                    if checkpoint is not None:
                        with forkguard.no_fork:  # it takes the client's locks: see forkguard
                            checkpoint.checkpoint()
            except Exception as error:
                self.client.warn_once("checkpoint", f"the crash record could not be updated ({error}).")
            waited = time.monotonic() - started
            if not self.scanned.is_set() and waited >= SCAN_DELAY and (
                not self.client.tracker.in_foreground or waited >= SCAN_DELAY_MAX
            ):
                self._scan(directory)
            stop.wait(self.interval if self.scanned.is_set() else SCAN_POLL)

    # -- the watcher -------------------------------------------------------------------------

    def _keep_watch(self, directory: str) -> None:
        """Start the watcher when the option is on and none runs yet, stop it when it is off."""
        wanted = self.client.config.watch_kernel_deaths
        watch = self.watch
        if watch is not None:
            if not wanted:
                self._stop_watch()
            elif not watch.running():
                self.client.warn_once("watcher-ended", "The kernel-death watcher ended early; this "
                                      "kernel's death would be reported by the next kernel that starts.")
            return
        if not wanted or self.record is None or "watcher" in self._refused:
            return
        self.loaded.wait(LOAD_WAIT)
        from .death_watch import DeathWatch

        with self._lock:
            record = self.record
            if record is None or self._stop.is_set():
                return
            watch = DeathWatch(self.client, record, directory)
            try:
                began = time.perf_counter()
                watch.start()
                self.spawn_seconds = time.perf_counter() - began
            except OSError as error:
                self._refused.add("watcher")
                self.client.warn_once("watcher", f"The kernel-death watcher cannot start ({error}); this "
                                      "kernel's death would be reported by the next kernel that starts.")
                return
            self.watch = watch
            self.client.listeners.append(watch.options_changed)

    def _stop_watch(self) -> None:
        watch, self.watch = self.watch, None
        if watch is not None:
            with contextlib.suppress(ValueError):
                self.client.listeners.remove(watch.options_changed)
            watch.stop()

    def _without_record(self, sentence: str, stop: threading.Event) -> None:
        """Say once, in the log and in status and the panel while it lasts, why this kernel has
        no crash record."""
        self.client.warn_once(f"no-crash-record {sentence}", sentence)
        with self._lock:
            if stop.is_set() or self.problem is not None:
                return
            self.problem = sentence
            self.client.problems.append(sentence)

    def _open(self, stop: threading.Event) -> str | None:
        """Make the record and hand it to the cell hooks; None if uninstalled meanwhile."""
        client = self.client
        with forkguard.no_fork:  # here, not at load: the load stays cheap
            from ..core.private_files import make_private
            from ..report.device import persistence_directory
            from . import memory
            from .crash_checkpoint import Checkpoint
            from .crash_record import DIRECTORY, CrashRecord

            directory = persistence_directory(client.config.persistence_directory)
        # The trust rule before anything is made there: raises RefusedDirectory.
        make_private(directory)
        make_private(os.path.join(directory, DIRECTORY), root=False)
        # The launch on the wall clock, from the monotonic one the client keeps.
        launched_wall = time.time() - (time.monotonic() - client.launched_at)
        record = CrashRecord(directory, launched_wall=launched_wall,
                             launched_monotonic=client.launched_at)
        try:
            record.catch_faults()
        except (OSError, RuntimeError, ValueError) as error:
            client.warn_once("faulthandler", f"fatal signals will be reported without stacks ({error}).")
        checkpoint = Checkpoint(record, client, self.cells, self._cell_files, cgroup=memory.FollowedCgroup())
        with self._lock:
            if stop.is_set():
                record.close(remove=True)
                return None
            self.record, self.checkpoint = record, checkpoint
            if self.ending_since is not None:  # a shutdown request came while the record was being made
                record.mark_ended()
            checkpoint.session_changed()
            client.listeners.append(checkpoint.session_changed)
            if self.cell_runs is not None:
                self.cell_runs.crash_record = record
            # A cell that started before the record was handed over: the cell hook saw none.
            # (It sets client.cell before it looks, this thread looks after handing over: one
            # of the two stores it.)
            run = client.cell
            if run is not None:
                record.cell_started(run)
        return directory

    def _scan(self, directory: str) -> None:
        try:
            from .dead_kernels import report_dead_kernels

            told: list[DeathNote] = []
            report_dead_kernels(self.client, directory, self.record, told)
            self._tell_previous_death(directory, told)
        except Exception as error:
            self.client.warn_once("kernel-deaths", f"earlier kernels' deaths could not be read ({error}).")
        finally:
            self.scanned.set()

    def _tell_previous_death(self, directory: str, told: list[DeathNote]) -> None:
        """Take the notes of earlier deaths (death_notes.py) and say the newest recent one, of
        those and of the deaths this kernel's scan reported (`told`)."""
        from .crash_record import DIRECTORY
        from .death_notes import RECENT_SECONDS, take_notes

        record = self.record
        if record is None:
            return
        launched_wall = time.time() - (time.monotonic() - self.client.launched_at)
        since = launched_wall - RECENT_SECONDS
        notes = [note for note in told if note.died_at >= since]
        taken = take_notes(Path(directory) / DIRECTORY, record.token, since)
        notes += [taken] if taken is not None else []
        if notes:
            self.client.previous_kernel_died(max(notes, key=lambda note: note.died_at).text())
