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
import threading
import time
import weakref
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from ..client import Client
from ..core.config import Configuration, ConfigurationError, from_environment
from ..report.breadcrumbs import LogBreadcrumbs
from ..report.cells import CellIndex
from ..report.run import HeadlessRun, remote
from ..sources import Source, headless
from ..sources.cell_runs import CellRuns
from ..sources.event_loop import LoopExceptions
from ..sources.kernel_deaths import KernelDeaths
from ..sources.threads import ThreadExceptions
from ..sources.widgets import WidgetActivity, WidgetCallbacks
from .settings import CONFIG_FILE, DEFAULT, ENVIRONMENT, KEY_FILE, BugsnagIPython
from .status import HOW_TO_SET_A_KEY

if TYPE_CHECKING:
    from .magics import BugsnagMagics

log = logging.getLogger("bugsnag_ipython")
SHELL_ATTRIBUTE = "_bugsnag_ipython"
# jupyter_client sends SIGTERM half its shutdown_wait_time, 2.5 s by default, after a shutdown
# request. The exit flush ends at most EXIT_FLUSH_SECONDS after the request (after the exit itself,
# without one), so the kernel's own exit has the rest: 0.5 s on an idle machine, over 1 s on a busy
# one with ipykernel 6. Counted from the exit instead, a 1.5 s flush met SIGTERM on a busy machine.
EXIT_FLUSH_SECONDS = 1.0
# A late exit still waits this long, for a payload the outbox has not written yet (delivery/delivery.py).
EXIT_FLUSH_FLOOR = 0.2


def exit_flush_seconds(ending_since: float | None, now: float) -> float:
    """How long the exit flush may wait at `now`: what is left of EXIT_FLUSH_SECONDS since the
    end began (`ending_since`, None if nothing announced it), never under EXIT_FLUSH_FLOOR."""
    began = now if ending_since is None else ending_since
    return max(EXIT_FLUSH_FLOOR, min(EXIT_FLUSH_SECONDS, began + EXIT_FLUSH_SECONDS - now))


def _setup_logging() -> None:
    # Our messages go to the kernel's log, never into a cell (see kernel_log.py).
    from . import kernel_log

    kernel_log.install()


def loaded_in_cell(shell: Any) -> bool:
    """True for `%load_ext` in a cell; False when kernel config loads it before any cell."""
    return getattr(getattr(shell, "displayhook", None), "exec_result", None) is not None


class Extension:
    """What one shell has loaded: its client, settings and the hooks to remove on unload."""

    def __init__(self, shell: Any, *, monotonic: Callable[[], float] = time.monotonic) -> None:
        """`monotonic`: the clock of the client, the sessions and the exit flush."""
        self.shell = shell
        self.settings = BugsnagIPython(parent=shell)
        self._environment = bugsnag_variables(os.environ)
        config, origins, self._file_problems, env_problems = self._initial_configuration()
        self.problems = self._file_problems + env_problems
        run = headless.detect(os.environ, os.getcwd(), time.time())
        self._default_project_root = (run and run.project_root()) or os.getcwd()
        if config.project_root is None:
            config = config.replace(project_root=self._default_project_root)
        self.cells = CellIndex(shell, run)
        self.client = Client(config, resolve_cell=self.cells, monotonic=monotonic)
        if run is not None and not run.dashboard:
            # A run the command line names is known now: one session for all of it. One
            # recognised only by its notebook (nbclient called from Python) keeps the idle
            # rule, which never splits cells run back to back. A dashboard is a person's:
            # sessions as in JupyterLab, no `run` tab.
            self.client.headless_run(self.cells.run_tab, one_session=run.known_at_launch)
        self.client.problems.extend(self.problems)
        self.client.origins.update(origins)
        self.client.on_first_held_event = self._say_held
        if config.app_version is None:
            self.client.release_lookup.start(release_directory(run), os.environ)
        self.settings.effective = self._effective
        self.log_breadcrumbs = LogBreadcrumbs(self.client.leave_breadcrumb)
        self.cell_runs = CellRuns(self.client, shell, self.cells)
        self.kernel_deaths = KernelDeaths(self.client, shell, self.cells, self.cell_runs)
        activity = WidgetActivity(self.client, getattr(shell, "kernel", None))
        self.sources: list[Source] = [
            self.cell_runs,
            ThreadExceptions(self.client),
            activity,
            WidgetCallbacks(self.client, shell, activity),
            LoopExceptions(self.client, shell),
            self.kernel_deaths,
        ]
        self.magics: BugsnagMagics | None = None
        self.installed = False

    def _initial_configuration(self) -> tuple[Configuration, dict[str, str], list[str], list[str]]:
        """Defaults < the saved key < IPython config files < environment; bad values fall back to
        defaults. Also where each option came from, and the problems of each source."""
        config = Configuration()
        origins: dict[str, str] = {}
        problems: list[str] = []
        options = self.settings.set_options()
        if "api_key" not in options and not os.environ.get("BUGSNAG_API_KEY", "").strip():
            saved, problem = saved_key()
            if saved is not None:
                config, origins["api_key"] = config.replace(api_key=saved), KEY_FILE
            problems += [problem] if problem else []
        for name, value in options.items():
            try:
                config = config.replace(**{name: value})
                origins[name] = CONFIG_FILE
            except ConfigurationError as error:
                problems.append(f"{error} (from IPython config; the default is used instead)")
        env_changes, env_problems = from_environment(os.environ)
        origins.update(dict.fromkeys(env_changes, ENVIRONMENT))
        return config.replace(**env_changes), origins, problems, env_problems

    def _effective(self) -> tuple[Configuration, dict[str, str]]:
        """The options as `%config BugsnagIPython` shows them: an app version nobody set is the
        default release's, its origin where that was found (`git`, `image`, `ci`)."""
        config, origins = self.client.config, self.client.origins
        release = self.client.release_lookup.result(0)
        if config.app_version is None and release is not None:
            return config.replace(app_version=release.version), {**origins, "app_version": release.origin}
        return config, origins

    def reread_environment(self) -> None:
        """`%reload_ext`: apply the `BUGSNAG_*` variables that changed since they were last read
        (set with `%env`, say); a variable removed gives the option back to config or default.
        Options nobody changed in the environment keep what later calls gave them."""
        now = bugsnag_variables(os.environ)
        changed = {name for name in now.keys() | self._environment.keys()
                   if now.get(name) != self._environment.get(name)}
        self._environment = now
        changes, env_problems = from_environment({v: now[v] for v in changed if v in now})
        self.problems = self._file_problems + env_problems
        self.client.problems[:] = self.problems
        fallback = self.settings.set_options()
        for variable in changed - now.keys():
            name = variable.removeprefix(Configuration.ENV_PREFIX).lower()
            if self.client.origins.get(name) != ENVIRONMENT:
                continue
            if name in fallback:
                self._apply(CONFIG_FILE, {name: fallback[name]})
            elif name == "api_key" and (saved := saved_key()[0]) is not None:
                self._apply(KEY_FILE, {name: saved})
            else:
                default = getattr(Configuration(), name)
                if name == "project_root":
                    default = self._default_project_root  # as at load: the working directory
                self._apply(DEFAULT, {name: default})
        self._apply(ENVIRONMENT, changes)

    def _apply(self, origin: str, changes: dict[str, Any]) -> None:
        try:
            if changes:
                self.client.configure(origin, **changes)
        except ConfigurationError as error:  # a config file's value, refused once already
            self.problems.append(str(error))

    # -- install / uninstall ---------------------------------------------------------------

    def install(self, *, launch: bool) -> None:
        shell = self.shell
        in_cell = loaded_in_cell(shell)
        for problem in self.problems:
            self._say(problem, in_cell)
        if in_cell and not self.client.config.api_key:
            self._say(f"No BugSnag API key is set, so nothing will be sent; {HOW_TO_SET_A_KEY}.", in_cell)
        self.settings.on_change = self._on_setting
        if self.settings not in shell.configurables:
            shell.configurables.append(self.settings)
        for source in self.sources:
            source.install()
        self.log_breadcrumbs.install()
        atexit.register(self.at_exit)
        self._register_magics()
        self.installed = True
        if launch:
            self.client.launch(in_background=not in_cell)
        self.kernel_deaths.loaded.set()

    def uninstall(self) -> None:
        shell = self.shell
        for source in self.sources:
            source.uninstall()
        self.log_breadcrumbs.uninstall()
        atexit.unregister(self.at_exit)
        self.settings.on_change = None
        if self.settings in shell.configurables:
            shell.configurables.remove(self.settings)
        self._unregister_magics()
        self.installed = False

    def _register_magics(self) -> None:
        """The magic, made once per extension: making a Magics adds it to the shell's
        configurables, so a new one at each load would leave one more behind each unload."""
        shell = self.shell
        if self.magics is None:
            from .magics import BugsnagMagics

            self.magics = BugsnagMagics(shell, extension=self)
        elif self.magics not in shell.configurables:
            shell.configurables.append(self.magics)
        shell.register_magics(self.magics)

    def _unregister_magics(self) -> None:
        """Everything _register_magics added: the magics, their registry entry, the configurable."""
        shell, magics = self.shell, self.magics
        if magics is None:
            return
        line = shell.magics_manager.magics.get("line", {})
        for name in ("bugsnag_session", "bugsnag_key"):
            if getattr(line.get(name), "__self__", None) is magics:
                del line[name]
        registry = shell.magics_manager.registry
        name = type(magics).__name__
        if registry.get(name) is magics:
            del registry[name]
        while magics in shell.configurables:
            shell.configurables.remove(magics)

    @staticmethod
    def _say(message: str, in_cell: bool) -> None:
        if in_cell:
            print(f"bugsnag_ipython: {message}", file=sys.stderr)
        else:
            log.warning(message)

    def _say_held(self) -> None:
        """The first event held for lack of an API key: said in the cell that made it (once per
        kernel), or in the kernel log when no cell is running on this thread."""
        try:
            in_cell = self.client.cell is not None and threading.current_thread() is threading.main_thread()
            self._say(
                "This error was not sent: no BugSnag API key is set, so errors are kept in memory "
                f"(and lost when the kernel exits); {HOW_TO_SET_A_KEY}.",
                in_cell,
            )
        except Exception:
            pass  # said nowhere is better than said into the user's traceback

    def ask_for_key(self) -> None:
        """`%bugsnag_key`: the key from a prompt that does not echo, for this kernel and later ones."""
        from .key_prompt import ask_for_key

        ask_for_key(self.client, config_sets_key="api_key" in self.settings.set_options())

    # -- settings -------------------------------------------------------------------------

    def _on_setting(self, name: str, value: Any) -> None:
        self.client.configure(**{name: value})

    def at_exit(self) -> None:
        try:
            # Registered after the sources' exit hooks, this runs before them: the end began
            # at a shutdown request or `exit` (kernel_deaths saw exit_now), or begins now.
            began = self.kernel_deaths.ending_since
            self.client.shutdown(exit_flush_seconds(began, self.client.tracker.monotonic()))
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


def release_directory(run: HeadlessRun | None) -> str:
    """Where the notebook lies, for its repository: a run's notebook as its command line names
    it, else the notebook Jupyter Server names (`JPY_SESSION_NAME`, a full path), else the
    kernel's working directory (where frontends and runners start a notebook's kernel)."""
    if run is not None and run.command is not None and not remote(run.command.notebooks[0]):
        return os.path.dirname(run.command.notebooks[0])
    named = os.environ.get(headless.FRONTEND_VARIABLE, "")
    if os.path.isabs(named) and (run is None or not run.outranks_frontend):
        return os.path.dirname(named)
    return os.getcwd()


def saved_key() -> tuple[str | None, str | None]:
    """The key `%bugsnag_key` saved, and the sentence saying why a file there is not used."""
    from ..core.key_file import KeyFileError, key_file_path, read_key

    try:
        return read_key(key_file_path()), None
    except KeyFileError as error:
        return None, str(error)
    except OSError as error:  # the folder vanished between the open and its check, say
        return None, f"The saved API key could not be read ({error.strerror or error})."


def bugsnag_variables(environ: Mapping[str, str]) -> dict[str, str]:
    return {k: v for k, v in environ.items() if k.startswith(Configuration.ENV_PREFIX)}


def load(shell: Any) -> Extension:
    _setup_logging()
    existing: Extension | None = getattr(shell, SHELL_ATTRIBUTE, None)
    if existing is not None:
        # %reload_ext is not a launch: the same client and session go on, with what the
        # environment says now.
        if not existing.installed:
            existing.reread_environment()
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
