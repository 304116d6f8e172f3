"""Headless runs: is this kernel run by a notebook runner rather than a person? jupyter_client
gives every kernel it starts its parent's process id (`JPY_PARENT_PID`): a runner's command line
(from Linux's /proc) names the notebook. Jupyter Server sets `JPY_SESSION_NAME` for a notebook a
person opened; Voilà runs a notebook as a runner does, for a person."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Mapping, Sequence
from urllib.parse import unquote

from ..report.run import PAPERMILL, VOILA, HeadlessRun, RunnerCommand, resolved_path

FRONTEND_VARIABLE = "JPY_SESSION_NAME"  # the notebook a person opened in Jupyter Server
PARENT_VARIABLE = "JPY_PARENT_PID"  # set by jupyter_client for the kernels it starts
NBCONVERT = "nbconvert"
JUPYTER_EXECUTE = "jupyter execute"
SERVER = "server"  # a notebook server: its kernels are a person's
KERNEL = "kernel"  # an IPython kernel: the kernel it starts inherits its notebook's variables
_SERVERS = ("lab", "notebook", "server", "nbclassic", "jupyterlab", "jupyter_server", "voila")
# Programs by how they are started: their own script, `jupyter <subcommand>` or `python -m <module>`.
PROGRAMS = {
    "papermill": PAPERMILL, "-m papermill": PAPERMILL,
    "jupyter-nbconvert": NBCONVERT, "jupyter nbconvert": NBCONVERT, "-m nbconvert": NBCONVERT,
    "jupyter-execute": JUPYTER_EXECUTE, "jupyter execute": JUPYTER_EXECUTE,
    "-m nbclient": JUPYTER_EXECUTE, "-m nbclient.cli": JUPYTER_EXECUTE,
    "voila": SERVER,
    **{f"{how}{name}": SERVER for how in ("jupyter-", "jupyter ", "-m ") for name in _SERVERS},
    "ipykernel_launcher": KERNEL, "ipykernel_launcher.py": KERNEL, "ipykernel": KERNEL,
}
# The options that take values (papermill's -p and -r two); the others are switches.
_OPTIONS = {
    PAPERMILL: {"-p": 2, "--parameters": 2, "-r": 2, "--parameters_raw": 2, **dict.fromkeys((
        "-f", "--parameters_file", "-y", "--parameters_yaml", "-b", "--parameters_base64", "-k", "--kernel",
        "-l", "--language", "--cwd", "--engine", "--log-level", "--start-timeout", "--start_timeout",
        "--execution-timeout", "--autosave-cell-every", "--stdout-file", "--stderr-file"), 1)},
    NBCONVERT: {"--to": 1, "--output": 1, "--output-dir": 1},
}
# nbconvert's output extension per exporter (`--to`), where it is not `.<exporter>`.
_NBCONVERT_EXTENSIONS = {"notebook": ".ipynb", "slides": ".slides.html", "webpdf": ".pdf", "latex": ".tex",
                         "markdown": ".md", "python": ".py", "script": ".py"}


def launched(argv: Sequence[str]) -> tuple[str, Sequence[str]]:
    """The program `argv` runs (as PROGRAMS names it, else "") and its arguments."""
    words = [os.path.basename(word).removesuffix(".exe") for word in argv[:5]]
    for index in range(min(len(words), 4)):
        for taken in (1, 2):  # a script or module, then `jupyter <subcommand>` or `-m <module>`
            name = " ".join(words[index:index + taken])
            if name in PROGRAMS:
                return PROGRAMS[name], argv[index + taken:]
    return "", ()


def runner_command(argv: Sequence[str], cwd: str) -> RunnerCommand | None:
    """What the runner `argv` (run in `cwd`) says about its run; None for no runner, or one that runs none."""
    runner, args = launched(argv)
    if runner not in (PAPERMILL, NBCONVERT, JUPYTER_EXECUTE):
        return None
    positional, options = _read(args, _OPTIONS.get(runner, {}))
    if runner == PAPERMILL:
        if not positional:
            return None
        parameters = {values[0]: values[1] for _, values in options if len(values) == 2}
        paths = [resolved_path(path, cwd) for path in positional[:2]]
        return RunnerCommand(PAPERMILL, (paths[0],), paths[1] if len(paths) > 1 else None, parameters)
    notebooks = _notebooks(positional, cwd)
    inplace = "--inplace" in args
    executes = "--execute" in args or "--ExecutePreprocessor.enabled=True" in args
    if not notebooks or not (inplace or executes or runner == JUPYTER_EXECUTE):
        return None
    output = None
    if len(notebooks) == 1 and (inplace or runner == NBCONVERT):
        given = {name: values[0] for name, values in options if values}  # the last given of each
        output = notebooks[0] if inplace else _nbconvert_output(given, notebooks[0], cwd)
    return RunnerCommand(runner, notebooks, output)


def _read(args: Sequence[str], valued: Mapping[str, int]) -> tuple[list[str], list[tuple[str, list[str]]]]:
    # The positional arguments, and each option given a value with its values (`--name=value` too).
    positional: list[str] = []
    options: list[tuple[str, list[str]]] = []
    rest = iter(args)
    for arg in rest:
        name, equals, value = arg.partition("=")
        if arg in valued:
            values = [next(rest, None) for _ in range(valued[arg])]
            options.append((arg, [given for given in values if given is not None]))
        elif equals and name in valued:
            options.append((name, [value]))
        elif not arg.startswith("-") or arg == "-":
            positional.append(arg)
    return positional, options


def _notebooks(args: Sequence[str], cwd: str) -> tuple[str, ...]:
    named = (arg for arg in args if arg.endswith(".ipynb") and not arg.startswith("-"))
    return tuple(os.path.normpath(os.path.join(cwd, arg)) for arg in named)


def _nbconvert_output(options: Mapping[str, str], notebook: str, cwd: str) -> str:
    # `--output-dir` or the notebook's folder; `--output` or the notebook's name (`.nbconvert` beside it).
    to = options.get("--to") or "html"
    extension = _NBCONVERT_EXTENSIONS.get(to, "." + to)
    directory = options.get("--output-dir")
    base = options.get("--output")
    if base is not None:
        base = base.removesuffix(extension)
    else:
        base = os.path.splitext(os.path.basename(notebook))[0]
        if to == "notebook" and directory is None:
            base += ".nbconvert"
    folder = os.path.join(cwd, directory) if directory is not None else os.path.dirname(notebook)
    return os.path.normpath(os.path.join(folder, base + extension))


def voila_kernel(env: Mapping[str, str]) -> bool:
    """Whether Voilà started this kernel (or its parent): `SERVER_SOFTWARE=voila/…` or `VOILA_PREHEAT`."""
    return env.get("SERVER_SOFTWARE", "").startswith(VOILA + "/") or "VOILA_PREHEAT" in env


def dashboard_notebook(env: Mapping[str, str], kernel_cwd: str,
                       server: tuple[Sequence[str], str] | None) -> str | None:
    """The notebook Voilà renders in this kernel (started in its folder): the base name of the page's
    (`SCRIPT_NAME`: `…/voila/render/<path>`), else the one `server` (Voilà's argv and cwd) names."""
    page = env.get("SCRIPT_NAME", "")
    if "/voila/render/" in page:
        name = os.path.basename(unquote(page.rsplit("/voila/render/", 1)[1]))
        if name.endswith(".ipynb"):
            return os.path.join(kernel_cwd, name)
    named = _notebooks(server[0][1:], server[1]) if server is not None else ()
    return named[0] if len(named) == 1 else None


def detect(env: Mapping[str, str], kernel_cwd: str, started_at: float) -> HeadlessRun | None:
    """The run this kernel may serve; None for a person's notebook, or a kernel not from jupyter_client."""
    try:
        parent = int(env.get(PARENT_VARIABLE) or "")
    except ValueError:
        return None
    found: tuple[list[str], str] | None = None  # the parent's command line and working directory
    with contextlib.suppress(OSError), open(f"/proc/{parent}/cmdline", "rb") as file:
        found = ([part.decode("utf-8", "replace") for part in file.read().split(b"\0") if part],
                 os.readlink(f"/proc/{parent}/cwd"))
    try:
        program = launched(found[0])[0] if found is not None else ""
        command = runner_command(*found) if found is not None else None
    except Exception:  # an odd command line is no runner's; the notebook search may still tell
        program, command = "", None
    if command is not None:
        # Run by a runner called in a notebook's cell, it has that notebook's JPY_SESSION_NAME.
        return HeadlessRun(command, kernel_cwd, started_at)
    if voila_kernel(env) and (program == SERVER or found is None):
        # Voilà's variables, not inherited from a dashboard's kernel that started this one.
        notebook = dashboard_notebook(env, kernel_cwd, found)
        dashboard = RunnerCommand(VOILA, (notebook,) if notebook is not None else ())
        return HeadlessRun(dashboard, kernel_cwd, started_at)
    if program == SERVER:
        return None  # a notebook server's kernel: a person's, named by its frontend
    if program == KERNEL and env.get(FRONTEND_VARIABLE):
        # Started by another kernel (nbclient or papermill in a cell): the variable is that kernel's.
        return HeadlessRun(None, kernel_cwd, started_at, inherited_frontend=True)
    return None if env.get(FRONTEND_VARIABLE) else HeadlessRun(None, kernel_cwd, started_at)
