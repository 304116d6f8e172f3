"""IPython glue: kernel events in, client calls out; and undoing it all on unload.

Every callback body catches everything: an exception escaping an IPython event callback is
shown to the user in the cell, and nothing this extension does may reach the user's cell.
"""

from __future__ import annotations

import atexit
import contextlib
import logging
import os
import sys
import threading
import time
from typing import Any

from ..client import CellRun, Client, ThreadInfo
from ..config import Configuration, ConfigurationError, from_environment
from ..report.breadcrumbs import LogBreadcrumbs
from ..report.cells import CellIndex
from .settings import BugsnagIPython

log = logging.getLogger("bugsnag_ipython")
SHELL_ATTRIBUTE = "_bugsnag_ipython"
EXIT_FLUSH_SECONDS = 1.5  # jupyter_client sends SIGTERM 2.5 s after a shutdown request


def _setup_logging() -> None:
    # Our messages go to the kernel's log (the process's real stderr), never into a cell.
    if not log.handlers:
        handler = logging.StreamHandler(sys.__stderr__)
        handler.setFormatter(logging.Formatter("[bugsnag_ipython] %(message)s"))
        log.addHandler(handler)
        log.setLevel(logging.INFO)
        log.propagate = False


def loaded_in_cell(shell: Any) -> bool:
    """True for `%load_ext` in a cell; False when kernel config loads it before any cell."""
    return getattr(getattr(shell, "displayhook", None), "exec_result", None) is not None


class Extension:
    """What one shell has loaded: its client, settings and the hooks to remove on unload."""

    def __init__(self, shell: Any) -> None:
        self.shell = shell
        self.settings = BugsnagIPython(parent=shell)
        config, self.problems = self._initial_configuration()
        project_root = config.project_root or os.getcwd()
        if config.project_root is None:
            config = config.replace(project_root=project_root)
        self.cells = CellIndex(shell)
        self.client = Client(config, resolve_cell=self.cells)
        self.client.problems.extend(self.problems)
        self.log_breadcrumbs = LogBreadcrumbs(self.client.leave_breadcrumb)
        self._previous_thread_hook: Any = None
        self.installed = False

    def _initial_configuration(self) -> tuple[Configuration, list[str]]:
        """Defaults < IPython config files < environment; bad values fall back to defaults."""
        config = Configuration()
        problems: list[str] = []
        for name, value in self.settings.set_options().items():
            try:
                config = config.replace(**{name: value})
            except ConfigurationError as error:
                problems.append(f"{error} (from IPython config; the default is used instead)")
        env_changes, env_problems = from_environment(os.environ)
        problems += env_problems
        return config.replace(**env_changes), problems

    # -- install / uninstall ---------------------------------------------------------------

    def install(self, *, launch: bool) -> None:
        shell = self.shell
        in_cell = loaded_in_cell(shell)
        for problem in self.problems:
            self._say(problem, in_cell)
        if in_cell and not self.client.config.api_key:
            self._say(
                "No BugSnag API key is set, so nothing will be sent; set BUGSNAG_API_KEY or call "
                "bugsnag_ipython.configure(api_key=...).",
                in_cell,
            )
        self.settings.on_change = self._on_setting
        if self.settings not in shell.configurables:
            shell.configurables.append(self.settings)
        shell.events.register("pre_run_cell", self.pre_run_cell)
        shell.events.register("post_run_cell", self.post_run_cell)
        self._previous_thread_hook = threading.excepthook
        threading.excepthook = self.thread_exception
        self.log_breadcrumbs.install()
        atexit.register(self.at_exit)
        from .magics import BugsnagMagics

        shell.register_magics(BugsnagMagics(shell, extension=self))
        self.installed = True
        if launch:
            self.client.launch(in_background=not in_cell)

    def uninstall(self) -> None:
        shell = self.shell
        for event, callback in (
            ("pre_run_cell", self.pre_run_cell),
            ("post_run_cell", self.post_run_cell),
        ):
            with contextlib.suppress(ValueError):
                shell.events.unregister(event, callback)
        if threading.excepthook == self.thread_exception:
            threading.excepthook = self._previous_thread_hook
        self.log_breadcrumbs.uninstall()
        atexit.unregister(self.at_exit)
        self.settings.on_change = None
        if self.settings in shell.configurables:
            shell.configurables.remove(self.settings)
        magics = shell.magics_manager.magics.get("line", {})
        magics.pop("bugsnag_session", None)
        self.installed = False

    @staticmethod
    def _say(message: str, in_cell: bool) -> None:
        if in_cell:
            print(f"bugsnag_ipython: {message}", file=sys.stderr)
        else:
            log.warning(message)

    # -- settings -------------------------------------------------------------------------

    def _on_setting(self, name: str, value: Any) -> None:
        self.client.configure(**{name: value})

    # -- kernel events --------------------------------------------------------------------

    def pre_run_cell(self, info: Any) -> None:
        try:
            # IPython counts the cell before pre_run_cell: this cell is `In [count - 1]`.
            count = self.shell.execution_count
            if info.store_history:
                count -= 1
            cell_id = info.cell_id
            if cell_id:
                self.cells.record(count, cell_id)
            # tuple.__new__ rather than CellRun(...): half the cost, and this runs for every cell.
            run = tuple.__new__(CellRun, (count, cell_id, info.raw_cell, time.monotonic()))
            self.client.cell_started(run)
        except Exception:
            self._internal_failure("pre_run_cell")

    def post_run_cell(self, result: Any) -> None:
        try:
            client = self.client
            error = result.error_in_exec
            if error is None and result.error_before_exec is not None:
                before = result.error_before_exec
                error = before if isinstance(before, SyntaxError) else None
            if error is not None and self._reportable(error):
                client.notify(error, unhandled=True, cell=client.cell)
            client.cell_finished(error)
        except Exception:
            self._internal_failure("post_run_cell")

    def thread_exception(self, args: Any) -> None:
        try:
            error = args.exc_value
            if error is not None and self._reportable(error):
                thread = args.thread
                info = ThreadInfo(
                    name=str(getattr(thread, "name", None) or "unknown"),
                    ident=getattr(thread, "ident", None),
                    daemon=bool(getattr(thread, "daemon", False)),
                )
                self.client.notify_thread_exception(error, info)
        except Exception:
            self._internal_failure("threading.excepthook")
        # The default printing (or whoever hooked before us) still happens.
        previous = self._previous_thread_hook or threading.__excepthook__
        previous(args)

    def _reportable(self, error: BaseException) -> bool:
        if isinstance(error, ConfigurationError):
            return False  # a refused option is the user's input, not a crash of their code
        return self.client.should_report(error)

    def at_exit(self) -> None:
        try:
            self.client.shutdown(EXIT_FLUSH_SECONDS)
        except Exception:
            self._internal_failure("exit")

    def _internal_failure(self, where: str) -> None:
        error = sys.exc_info()[1]
        self.client.warn_once(
            f"internal-{where}",
            f"bugsnag_ipython failed in {where} ({type(error).__name__}: {error}); "
            "your code is unaffected.",
        )


def load(shell: Any) -> Extension:
    _setup_logging()
    existing: Extension | None = getattr(shell, SHELL_ATTRIBUTE, None)
    if existing is not None:
        # %reload_ext is not a launch: the same client and session go on.
        if not existing.installed:
            existing.install(launch=False)
        return existing
    extension = Extension(shell)
    setattr(shell, SHELL_ATTRIBUTE, extension)
    extension.install(launch=True)
    return extension


def unload(shell: Any) -> None:
    extension: Extension | None = getattr(shell, SHELL_ATTRIBUTE, None)
    if extension is not None and extension.installed:
        extension.uninstall()


def active(shell: Any) -> Extension | None:
    extension: Extension | None = getattr(shell, SHELL_ATTRIBUTE, None)
    return extension if extension is not None and extension.installed else None
