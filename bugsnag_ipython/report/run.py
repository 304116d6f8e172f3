"""Headless runs: a notebook runner (nbclient, `jupyter nbconvert --execute`, `jupyter execute`,
papermill) or a Voilà dashboard executing this kernel's notebook, with no frontend to send cell
ids: the runner's command line names the notebook, read with the first report for its cells."""

from __future__ import annotations

import os
import threading
from collections.abc import Mapping, Sequence
from datetime import datetime
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, NamedTuple
from urllib.parse import unquote

from ..core.basics import JsonDict, log
from ..core.config import without_credentials
from .payloads import iso8601, strings_replaced

if TYPE_CHECKING:
    from .notebook_files import NotebookFile

PAPERMILL = "papermill"
NBCONVERT = "nbconvert"
JUPYTER_EXECUTE = "jupyter execute"
NBCLIENT = "nbclient"
VOILA = "voila"

# How each runner is started: as a script of its own, as `jupyter <subcommand>`, as `python -m`.
_SCRIPTS = {"papermill": PAPERMILL, "papermill.exe": PAPERMILL, "jupyter-nbconvert": NBCONVERT,
            "jupyter-execute": JUPYTER_EXECUTE}
_SUBCOMMANDS = {"nbconvert": NBCONVERT, "execute": JUPYTER_EXECUTE}
_MODULES = {"papermill": PAPERMILL, "nbconvert": NBCONVERT, "nbclient": JUPYTER_EXECUTE,
            "nbclient.cli": JUPYTER_EXECUTE}
# papermill options that take values (the rest are switches): two for -p/-r, one for these.
_PAPERMILL_PAIRS = {"-p", "--parameters", "-r", "--parameters_raw"}
_PAPERMILL_VALUED = {"-f", "--parameters_file", "-y", "--parameters_yaml", "-b", "--parameters_base64", "-k",
                     "--kernel", "-l", "--language", "--cwd", "--engine", "--log-level", "--start-timeout",
                     "--start_timeout", "--execution-timeout", "--autosave-cell-every", "--stdout-file",
                     "--stderr-file"}
# nbconvert's output extension per exporter (`--to`), where it is not `.<exporter>`.
_NBCONVERT_EXTENSIONS = {"notebook": ".ipynb", "slides": ".slides.html", "webpdf": ".pdf", "latex": ".tex",
                         "markdown": ".md", "python": ".py", "script": ".py"}
_SERVERS = {"lab", "notebook", "server", "nbclassic", "jupyterlab", "jupyter_server", "voila"}
_VOILA_RENDER = "/voila/render/"


class RunnerCommand(NamedTuple):
    """What a runner's command line says about the run."""

    runner: str
    notebooks: tuple[str, ...]  # absolute paths of the notebooks it runs, in order
    output_path: str | None = None  # where the executed notebook goes (single notebook)
    parameters: Mapping[str, Any] = MappingProxyType({})  # papermill -p / -r, as text


def runner_command(argv: Sequence[str], cwd: str) -> RunnerCommand | None:
    """The runner of `argv` (the kernel's parent process, run in `cwd`), if it is one: `papermill
    …`, `jupyter-nbconvert …`, `jupyter nbconvert …`, `python -m papermill …` and the like."""
    for index, word in enumerate(argv[:4]):
        name = os.path.basename(word)
        following = argv[index + 1] if index + 1 < len(argv) else ""
        if name in _SCRIPTS:
            return _parse(_SCRIPTS[name], argv[index + 1:], cwd)
        if name in ("jupyter", "jupyter.exe") and following in _SUBCOMMANDS:
            return _parse(_SUBCOMMANDS[following], argv[index + 2:], cwd)
        if word == "-m" and following in _MODULES:
            return _parse(_MODULES[following], argv[index + 2:], cwd)
    return None


def server_command(argv: Sequence[str]) -> bool:
    """Whether `argv` runs a notebook server (`jupyter lab`, `voila`, ...): its kernels are a
    person's, even where it sets no `JPY_SESSION_NAME` (before Jupyter Server 2.1)."""
    words = [os.path.basename(word) for word in argv[:4]]
    for word, following in zip(words, [*words[1:], ""], strict=True):
        if word == "voila" or (word.startswith("jupyter-") and word.removeprefix("jupyter-") in _SERVERS):
            return True
        if word in ("jupyter", "-m") and following in _SERVERS:
            return True
    return False


def kernel_command(argv: Sequence[str]) -> bool:
    """Whether `argv` runs an IPython kernel (`python -m ipykernel_launcher -f …`)."""
    words = [os.path.basename(word) for word in argv[:4]]
    return any(word in ("ipykernel_launcher", "ipykernel", "ipykernel_launcher.py") for word in words)


def voila_kernel(env: Mapping[str, str]) -> bool:
    """Whether Voilà (or a kernel Voilà started) started this kernel: `SERVER_SOFTWARE=voila/<version>`
    for a page's kernel, `VOILA_PREHEAT` for a pool's."""
    return env.get("SERVER_SOFTWARE", "").startswith(VOILA + "/") or "VOILA_PREHEAT" in env


def dashboard_notebook(env: Mapping[str, str], kernel_cwd: str,
                       server: tuple[Sequence[str], str] | None) -> str | None:
    """The notebook Voilà renders in this kernel, started in the notebook's folder: the page's
    (`SCRIPT_NAME`: `<base url>voila/render/<path>`, of which only the base name is used), else the
    one `server` (Voilà's command line and working directory) names, else None."""
    page = env.get("SCRIPT_NAME", "")
    if _VOILA_RENDER in page:
        name = os.path.basename(unquote(page.rsplit(_VOILA_RENDER, 1)[1]))
        if name.endswith(".ipynb"):
            return os.path.join(kernel_cwd, name)
    if server is not None:
        named = _notebooks(server[0][1:], server[1])
        if len(named) == 1:
            return named[0]
    return None


def _parse(runner: str, args: Sequence[str], cwd: str) -> RunnerCommand | None:
    if runner == PAPERMILL:
        return _papermill(args, cwd)
    inplace = "--inplace" in args
    if runner == JUPYTER_EXECUTE:
        notebooks = _notebooks(args, cwd)
        return RunnerCommand(runner, notebooks, notebooks[0] if inplace else None) if notebooks else None
    executes = "--execute" in args or "--ExecutePreprocessor.enabled=True" in args
    notebooks = _notebooks([a for a in args if a != _option(args, "--output")], cwd)
    if not (executes or inplace) or not notebooks:
        return None
    output = None
    if len(notebooks) == 1:
        output = notebooks[0] if inplace else _nbconvert_output(args, notebooks[0], cwd)
    return RunnerCommand(NBCONVERT, notebooks, output)


def _notebooks(args: Sequence[str], cwd: str) -> tuple[str, ...]:
    named = (arg for arg in args if arg.endswith(".ipynb") and not arg.startswith("-"))
    return tuple(os.path.normpath(os.path.join(cwd, arg)) for arg in named)


def _option(args: Sequence[str], name: str) -> str | None:
    """The value of `--name value` or `--name=value` (the last one given)."""
    found = None
    for arg, following in zip(args, [*args[1:], None], strict=True):
        if arg == name and following is not None:
            found = following
        elif arg.startswith(name + "="):
            found = arg[len(name) + 1:]
    return found


def _nbconvert_output(args: Sequence[str], notebook: str, cwd: str) -> str:
    """Where nbconvert writes: `--output-dir` or the notebook's folder; `--output` or the
    notebook's name (`.nbconvert` added when the output is a notebook beside its input)."""
    to = _option(args, "--to") or "html"
    extension = _NBCONVERT_EXTENSIONS.get(to, "." + to)
    directory = _option(args, "--output-dir")
    base = _option(args, "--output")
    if base is not None:
        base = base.removesuffix(extension)
    else:
        base = os.path.splitext(os.path.basename(notebook))[0]
        if to == "notebook" and directory is None:
            base += ".nbconvert"
    folder = os.path.join(cwd, directory) if directory is not None else os.path.dirname(notebook)
    return os.path.normpath(os.path.join(folder, base + extension))


def _papermill(args: Sequence[str], cwd: str) -> RunnerCommand | None:
    positional: list[str] = []
    parameters: dict[str, Any] = {}
    rest = iter(args)
    for arg in rest:
        if arg in _PAPERMILL_PAIRS:
            name, value = next(rest, None), next(rest, None)
            if name is not None:
                parameters[name] = value
        elif arg in _PAPERMILL_VALUED:
            next(rest, None)
        elif not arg.startswith("-") or arg == "-":
            positional.append(arg)
    if not positional:
        return None
    output = _resolve_path(positional[1], cwd) if len(positional) > 1 else None
    return RunnerCommand(PAPERMILL, (_resolve_path(positional[0], cwd),), output, parameters)


def _resolve_path(path: str, cwd: str) -> str:
    # s3://, gs://, https:// ... stay as given: papermill reads and writes them itself.
    if remote(path) or path == "-":
        return path
    return os.path.normpath(os.path.join(cwd, path))


def remote(path: str) -> bool:
    return "://" in path


class HeadlessRun:
    """What the kernel knows of its run (thread-safe): the runner, its notebook (else looked for in
    the kernel's folder) and which of its cells each executed source was. A Voilà dashboard
    (runner `voila`) is run for a person, who is its session and sees no `run` tab."""

    def __init__(self, command: RunnerCommand | None, kernel_cwd: str, started_at: float, *,
                 inherited_frontend: bool = False) -> None:
        self.command = command
        self.inherited_frontend = inherited_frontend
        self.kernel_cwd = kernel_cwd
        self.started_at = started_at
        self.resolved = False  # the run's notebook was looked for (found or not)
        self._lock = threading.Lock()
        self._notebook: NotebookFile | None = None
        self._positions: dict[str, list[int]] = {}  # a cell's source -> its positions among the cells
        self._cell_ids: dict[int, str] = {}  # execution count -> the notebook's cell id
        self._next_count = 1  # the next executed source to match...
        self._next_cell = 0  # ...with a cell from this position on

    @property
    def outranks_frontend(self) -> bool:
        """True when a frontend's notebook variables (`JPY_SESSION_NAME`, `__session__`) came with
        the environment: a runner or another kernel started this one (`!papermill …` in a cell)."""
        return self.command is not None or self.inherited_frontend

    @property
    def known_at_launch(self) -> bool:
        """True when the command line named the runner (a dashboard is a person's visit, no run)."""
        return self.command is not None and not self.dashboard

    @property
    def dashboard(self) -> bool:
        return self.command is not None and self.command.runner == VOILA

    def project_root(self) -> str | None:
        """The default project root: papermill's input's folder (papermill, unlike frontends, does
        not start the kernel there), so that frames are named as in JupyterLab."""
        command = self.command
        if command is not None and command.runner == PAPERMILL and not remote(command.notebooks[0]):
            return os.path.dirname(command.notebooks[0])
        return None

    def _resolve(self, history: Sequence[str]) -> None:
        # Looked for once, once a cell ran: before, no executed source can be matched with a cell.
        with self._lock:
            if self.resolved or len(history) <= 1:
                return
            self.resolved = True
            try:
                self._notebook = notebook = self._find(history)
            except Exception as error:  # a notebook we cannot make sense of names nothing
                log.warning("The notebook of this run could not be read (%s); its cells are "
                            "named by their source.", error)
                return
            for position, (source, _) in enumerate(notebook.cells if notebook is not None else ()):
                self._positions.setdefault(source, []).append(position)

    def _find(self, history: Sequence[str]) -> NotebookFile | None:
        # Here, not at load: the notebook is read with the first report.
        from .notebook_files import best_match, notebooks_in, read_notebook

        command = self.command
        if command is None or not command.notebooks:
            # The folder search resolves links (to files inside the folder): none is followed.
            found = [read_notebook(path, follow=False) for path in notebooks_in(self.kernel_cwd, history)]
        else:
            # papermill writes its output (parameters injected, ids kept) before the kernel starts.
            paths = command.notebooks
            if command.runner == PAPERMILL:
                paths = (command.output_path or "", command.notebooks[0])
            found = [read_notebook(path) for path in paths if path and path != "-" and not remote(path)]
        notebook = best_match([nb for nb in found if nb is not None], history)
        if notebook is not None and command is None and notebook.papermill:
            # papermill called from Python: its output, in the kernel's folder, says the rest.
            given = notebook.papermill
            self.command = RunnerCommand(
                PAPERMILL,
                (_resolve_path(str(given.get("input_path") or notebook.path), self.kernel_cwd),),
                _resolve_path(str(given.get("output_path") or notebook.path), self.kernel_cwd),
            )
        return notebook

    def notebook_path(self, history: Sequence[str]) -> str | None:
        """The notebook a person would open: the runner's input, else the one found by its cells."""
        self._resolve(history)
        command = self.command
        if command is not None and len(command.notebooks) == 1:
            given = command.notebooks[0]
            # papermill's s3://bucket/jobs/a.ipynb is a.ipynb, as JupyterLab names one in its folder.
            return given.rsplit("/", 1)[-1] if remote(given) else given
        return self._notebook.path if self._notebook is not None else None

    def cell_id(self, execution_count: int, history: Sequence[str]) -> str | None:
        """The notebook's id of the cell that ran as `In[execution_count]`. Runners execute the
        cells in order (skipping empty ones): each source is matched with the next cell of that
        source, else (a cell run again) with the first."""
        self._resolve(history)
        with self._lock:
            while self._notebook is not None and self._next_count <= min(execution_count, len(history) - 1):
                positions = self._positions.get(history[self._next_count].rstrip())  # as a cell's source
                if positions:
                    position = next((p for p in positions if p >= self._next_cell), positions[0])
                    self._next_cell = position + 1
                    identity = self._notebook.cells[position][1]
                    if identity is not None:
                        self._cell_ids[self._next_count] = identity
                self._next_count += 1
            return self._cell_ids.get(execution_count)

    def tab(self, history: Sequence[str]) -> JsonDict | None:
        """The event's `run` tab: the runner, its notebooks, papermill's parameters, the start."""
        if self.dashboard:
            return None
        self._resolve(history)
        command, notebook = self.command, self._notebook
        if command is None and notebook is not None:
            command = RunnerCommand(NBCLIENT, (notebook.path,))
        if command is None:
            return None  # no run, as far as can be told
        papermill = notebook.papermill if notebook is not None else {}
        notebooks = command.notebooks
        tab: JsonDict = {"runner": command.runner,
                         "inputPath": notebooks[0] if len(notebooks) == 1 else list(notebooks)}
        if command.output_path:
            tab["outputPath"] = command.output_path
        if command.runner == PAPERMILL:
            given = papermill.get("parameters")
            tab["parameters"] = dict(given) if isinstance(given, Mapping) else dict(command.parameters)
        try:  # papermill's start, ISO 8601 with an offset
            tab["startedAt"] = iso8601(datetime.fromisoformat(str(papermill["start_time"])).timestamp())
        except (KeyError, ValueError):
            tab["startedAt"] = iso8601(self.started_at)
        # Parameters and paths are often connection URLs: sent without their credentials.
        cleaned: JsonDict = strings_replaced(tab, without_credentials)
        return cleaned
