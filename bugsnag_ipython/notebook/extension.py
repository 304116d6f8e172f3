"""IPython glue: load and unload. Loading makes the client, installs the failure sources
(`bugsnag_ipython.sources`), the settings and the magic; unloading undoes all of it.

Every callback body catches everything: an exception escaping an IPython event callback is
shown to the user in the cell, and nothing this extension does may reach the user's cell.
"""

from __future__ import annotations

import atexit
import logging
import os
import sys
import time
import weakref
from collections.abc import Callable
from typing import Any

from ..client import Client
from ..config import Configuration, ConfigurationError, from_environment
from ..report.breadcrumbs import LogBreadcrumbs
from ..report.cells import CellIndex
from ..sources import Source, headless
from ..sources.cell_runs import CellRuns
from ..sources.event_loop import LoopExceptions
from ..sources.threads import ThreadExceptions
from ..sources.widgets import WidgetActivity, WidgetCallbacks
from .settings import BugsnagIPython

log = logging.getLogger("bugsnag_ipython")
SHELL_ATTRIBUTE = "_bugsnag_ipython"
EXIT_FLUSH_SECONDS = 1.5  # jupyter_client sends SIGTERM 2.5 s after a shutdown request


def _setup_logging() -> None:
    # Our messages go to the kernel's log, never into a cell (see kernel_log.py).
    from . import kernel_log

    kernel_log.install()


def loaded_in_cell(shell: Any) -> bool:
    """True for `%load_ext` in a cell; False when kernel config loads it before any cell."""
    return getattr(getattr(shell, "displayhook", None), "exec_result", None) is not None


class Extension:
    """What one shell has loaded: its client, settings and the hooks to remove on unload."""

    def __init__(self, shell: Any) -> None:
        self.shell = shell
        self.settings = BugsnagIPython(parent=shell)
        config, self.problems = self._initial_configuration()
        run = headless.detect(os.environ, os.getcwd(), time.time())
        if config.project_root is None:
            config = config.replace(project_root=(run and run.project_root()) or os.getcwd())
        self.cells = CellIndex(shell, run)
        self.client = Client(config, resolve_cell=self.cells)
        if run is not None:
            # A run the command line names is known now: one session for all of it. One
            # recognised only by its notebook (nbclient called from Python) keeps the idle
            # rule, which never splits cells run back to back.
            self.client.headless_run(self.cells.run_tab, one_session=run.known_at_launch)
        self.client.problems.extend(self.problems)
        self.log_breadcrumbs = LogBreadcrumbs(self.client.leave_breadcrumb)
        self.cell_runs = CellRuns(self.client, shell, self.cells)
        activity = WidgetActivity(self.client, getattr(shell, "kernel", None))
        self.sources: list[Source] = [
            self.cell_runs,
            ThreadExceptions(self.client),
            activity,
            WidgetCallbacks(self.client, shell, activity),
            LoopExceptions(self.client, shell),
        ]
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
        for source in self.sources:
            source.install()
        self.log_breadcrumbs.install()
        atexit.register(self.at_exit)
        from .magics import BugsnagMagics

        shell.register_magics(BugsnagMagics(shell, extension=self))
        self.installed = True
        if launch:
            self.client.launch(in_background=not in_cell)

    def uninstall(self) -> None:
        shell = self.shell
        for source in self.sources:
            source.uninstall()
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

    def at_exit(self) -> None:
        try:
            self.client.shutdown(EXIT_FLUSH_SECONDS)
        except Exception:
            self.cell_runs.internal_failure("exit")

    def panel_source(self) -> Callable[[], Client | None]:
        """The client a panel shows: the one loaded in the shell now, so that a panel follows an
        unload (it says so and disables its buttons) and a reload, instead of driving a stale
        client."""
        shell, shown = self.shell, weakref.ref(self.client)

        def source() -> Client | None:
            loaded = active(shell)
            if loaded is not None:
                return loaded.client
            return None if getattr(shell, SHELL_ATTRIBUTE, None) is not None else shown()

        return source


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
