"""Load and unload: loading makes the client and installs the failure sources, the settings
and the magics; unloading undoes all of it."""

from __future__ import annotations

import atexit
import contextlib
import io
import logging
import os
import sys
import threading
import time
from collections.abc import Callable
from typing import IO, Any

from ..client import Client
from ..core.basics import log
from ..deaths.kernel_deaths import KernelDeaths
from ..report.breadcrumbs import LogBreadcrumbs
from ..report.cells import CellIndex
from ..report.run import HeadlessRun, remote
from ..sources import Source, headless
from ..sources.cell_runs import CellRuns
from ..sources.event_loop import LoopExceptions
from ..sources.threads import ThreadExceptions
from ..sources.widgets import WidgetCallbacks
from .magics import BugsnagMagics, ask_for_key
from .settings import HOW_TO_SET_A_KEY, BugsnagIPython, OptionSources

SHELL_ATTRIBUTE = "_bugsnag_ipython"
LOG_HANDLER = "bugsnag_ipython kernel log"  # one such handler per process, found again on reload
# jupyter_client sends SIGTERM 2.5 s (by default) after a shutdown request: the exit flush ends
# at most this long after the request, so the kernel's own exit has the rest.
EXIT_FLUSH_SECONDS = 1.0
EXIT_FLUSH_FLOOR = 0.2  # a late exit still waits for a payload the outbox has not written yet


def exit_flush_seconds(ending_since: float | None, now: float) -> float:
    """What is left at `now` of EXIT_FLUSH_SECONDS since the end began (None: it begins now)."""
    began = now if ending_since is None else ending_since
    return max(EXIT_FLUSH_FLOOR, min(EXIT_FLUSH_SECONDS, began + EXIT_FLUSH_SECONDS - now))


class Extension:
    """What one shell has loaded: its client, settings and the hooks to remove on unload."""

    def __init__(self, shell: Any, *, monotonic: Callable[[], float] = time.monotonic) -> None:
        self.shell = shell
        self.settings = BugsnagIPython(parent=shell)
        run = headless.detect(os.environ, os.getcwd(), time.time())
        self.options = OptionSources(self.settings, (run and run.project_root()) or os.getcwd())
        config, origins = self.options.initial()
        self.cells = CellIndex(shell, run)
        self.client = Client(config, resolve_cell=self.cells, monotonic=monotonic)
        if run is not None and not run.dashboard:
            # A run the command line names is one session; one known only by its notebook keeps
            # the idle rule. A dashboard is a person's: sessions as in JupyterLab, no `run` tab.
            self.client.headless_run(self.cells.run_tab, one_session=run.known_at_launch)
        self.client.problems.extend(self.options.problems)
        self.client.origins.update(origins)
        self.client.on_first_held_event = self._say_held
        if config.app_version is None:
            self.client.release_lookup.start(release_directory(run), os.environ)
        self.cell_runs = CellRuns(self.client, shell, self.cells)
        self.kernel_deaths = KernelDeaths(self.client, shell, self.cells, self.cell_runs)
        self.sources: list[Source | LogBreadcrumbs] = [
            self.cell_runs,
            ThreadExceptions(self.client),
            WidgetCallbacks(self.client, shell, getattr(shell, "kernel", None)),
            LoopExceptions(self.client, shell),
            self.kernel_deaths,
            LogBreadcrumbs(self.client.leave_breadcrumb),
        ]
        # Made once: making a Magics adds it to the shell's configurables, so a new one at each
        # load would leave one more behind each unload.
        self.magics = BugsnagMagics(shell, self.client, self.show_panel, self.ask_for_key)
        self.installed = False

    def install(self, *, launch: bool) -> None:
        # `%load_ext` in a cell, not kernel config before any cell.
        in_cell = getattr(getattr(self.shell, "displayhook", None), "exec_result", None) is not None
        for problem in self.options.problems:
            self._say(problem, in_cell)
        if in_cell and not self.client.config.api_key:
            self._say(f"No BugSnag API key is set, so nothing will be sent; {HOW_TO_SET_A_KEY}.", in_cell)
        self.settings.client = self.client
        for configurable in (self.settings, self.magics):  # what `%config` lists
            if configurable not in self.shell.configurables:
                self.shell.configurables.append(configurable)
        for source in self.sources:
            source.install()
        atexit.register(self.at_exit)
        self.shell.register_magics(self.magics)
        self.installed = True
        if launch:
            self.client.launch(in_background=not in_cell)
        self.kernel_deaths.loaded.set()

    def uninstall(self) -> None:
        for source in self.sources:
            source.uninstall()
        atexit.unregister(self.at_exit)
        self.settings.client = None
        for configurable in (self.settings, self.magics):
            self.shell.configurables.remove(configurable)
        # IPython has no call that unregisters magics: their names and registry entry go here.
        for name in ("bugsnag_session", "bugsnag_key"):
            del self.shell.magics_manager.magics["line"][name]
        del self.shell.magics_manager.registry[type(self.magics).__name__]
        self.installed = False

    @staticmethod
    def _say(message: str, in_cell: bool) -> None:
        if in_cell:
            print(f"bugsnag_ipython: {message}", file=sys.stderr)
        else:
            log.warning(message)

    def _say_held(self) -> None:
        with contextlib.suppress(Exception):  # an exception here would reach the user's cell
            in_cell = self.client.cell is not None and threading.current_thread() is threading.main_thread()
            self._say("This error was not sent: no BugSnag API key is set, so errors are kept in memory "
                      f"(and lost when the kernel exits); {HOW_TO_SET_A_KEY}.", in_cell)

    def ask_for_key(self) -> None:
        """`%bugsnag_key`: the key from a prompt that does not echo, for this kernel and later ones."""
        ask_for_key(self.client, config_sets_key="api_key" in self.settings.from_files)

    def show_panel(self) -> None:
        """The live panel, which shows this client while it is loaded: it follows an unload and a reload."""
        from .panel import show_panel  # here: loading the extension need not import the panel

        show_panel(self.client, lambda: self.client if self.installed else None)

    def at_exit(self) -> None:
        try:
            # The end began at a shutdown request or `exit` (as kernel_deaths saw it), or now.
            began = self.kernel_deaths.ending_since
            self.client.shutdown(exit_flush_seconds(began, self.client.tracker.monotonic()))
        except Exception:
            self.cell_runs.internal_failure("exit")


def release_directory(run: HeadlessRun | None) -> str:
    """Where the notebook lies, for its repository: the run's, else Jupyter Server's, else the cwd."""
    if run is not None and run.command is not None and not remote(run.command.notebooks[0]):
        return os.path.dirname(run.command.notebooks[0])
    named = os.environ.get(headless.FRONTEND_VARIABLE, "")
    if os.path.isabs(named) and (run is None or not run.outranks_frontend):
        return os.path.dirname(named)
    return os.getcwd()


def kernel_log_stream() -> IO[str]:
    """A text stream on the kernel's own log, else on stderr, else one that discards. ipykernel 7
    forwards what arrives on file descriptor 2 to the running cell, and keeps the original aside."""
    kept = getattr(sys.stderr, "_original_stdstream_copy", None)
    if not isinstance(kept, int):
        return sys.__stderr__ or io.StringIO()
    try:
        # A duplicate: ipykernel closes its copy when it restores the streams at exit.
        return io.TextIOWrapper(io.FileIO(os.dup(kept), "w"), encoding="utf-8", errors="backslashreplace",
                                line_buffering=True)
    except OSError:
        return io.StringIO()


def load(shell: Any) -> None:
    # The extension's log lines go to the kernel's log only: the root logger's handlers (a
    # `logging.basicConfig()` in a notebook) write into the cell.
    if not any(handler.get_name() == LOG_HANDLER for handler in log.handlers):
        handler = logging.StreamHandler(kernel_log_stream())
        handler.set_name(LOG_HANDLER)
        handler.setFormatter(logging.Formatter("[bugsnag_ipython] %(message)s"))
        log.addHandler(handler)
    log.setLevel(logging.INFO)
    log.propagate = False
    extension: Extension | None = getattr(shell, SHELL_ATTRIBUTE, None)
    if extension is None:
        extension = Extension(shell)
        setattr(shell, SHELL_ATTRIBUTE, extension)
        extension.install(launch=True)
    elif not extension.installed:
        # %reload_ext: the same client and session go on, with the `BUGSNAG_*` variables re-read.
        extension.options.reread(extension.client)
        extension.client.problems[:] = extension.options.problems
        extension.install(launch=False)


def unload(shell: Any) -> None:
    extension = active(shell)
    if extension is not None:
        extension.uninstall()


def active(shell: Any) -> Extension | None:
    extension: Extension | None = getattr(shell, SHELL_ATTRIBUTE, None)
    return extension if extension is not None and extension.installed else None
