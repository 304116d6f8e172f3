"""Headless and scheduled runs (nbclient, nbconvert, `jupyter execute`, papermill) report a
notebook's errors exactly as JupyterLab does, one session per run, with the run on the event.

One notebook is run once by each runner, and once the way JupyterLab runs it, each time in a
real kernel that loads the extension from the installed kernel config, against the collector.
The runs are shared by the tests of this module.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import nbformat
import pytest
from jupyter_client.kernelspec import KernelSpecManager
from jupyter_client.manager import KernelManager
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

from bugsnag_ipython.demo import KERNEL_NAME
from tests.conftest import collecting
from tests.kernel import Kernel, installed_env

pytest.importorskip("papermill")
pytest.importorskip("nbconvert")

# Runners are told by their command line, read from /proc (Linux).
# The first test's setup makes seven runs: on a loaded machine that is over the default timeout.
pytestmark = [pytest.mark.skipif(not Path("/proc/self/cmdline").exists(), reason="no /proc"),
              pytest.mark.timeout(300)]
BIN = Path(sys.executable).parent
RUN_TIMEOUT = 90

HELPERS = (
    "def check(value):\n"
    "    if value > threshold:\n"
    "        raise ValueError(f'{value} is over {threshold}')\n"
    "    return value\n"
)
CELLS = [
    new_markdown_cell("# Nightly check", id="title"),
    new_code_cell("threshold = 3\ntoken = 'dev-token'\n", id="parameters",
                  metadata={"tags": ["parameters"]}),
    new_code_cell(HELPERS, id="helpers"),
    new_code_cell("", id="empty"),
    new_code_cell("checked = [check(v) for v in (1, 2)]\n", id="check-small"),
    new_code_cell("check(10)\n", id="check-big"),
]
FRAMES = [("analysis.ipynb#cell-helpers", 3, "check"), ("analysis.ipynb#cell-check-big", 1, "<module>")]


def write_notebook(path: Path, helpers: str = HELPERS) -> Path:
    notebook = new_notebook(cells=[nbformat.from_dict(dict(cell)) for cell in CELLS])
    notebook.cells[2].source = helpers
    notebook.metadata.kernelspec = {"name": KERNEL_NAME, "display_name": "Python", "language": "python"}
    path.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(notebook, path)
    return path


@dataclass
class Run:
    name: str
    events: list[dict[str, Any]]  # as the collector held them when the runner had exited
    sessions: list[str]


@dataclass
class Runs:
    work: Path
    by_name: dict[str, Run]
    offline: Run  # a run while the endpoint was down, when its runner had exited
    flushed: Run  # ...and after `bugsnag-ipython outbox flush`


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Runs]:
    work = tmp_path_factory.mktemp("headless")
    notebook = write_notebook(work / "jobs" / "analysis.ipynb")
    # An edit: a comment line at the end of the helpers' cell (the lines above keep their numbers).
    write_notebook(work / "edited" / "analysis.ipynb", HELPERS + "# threshold: a parameter\n")
    (work / "out").mkdir()
    with collecting(work) as collector:

        def env(version: str, outbox: str = "outbox", **options: str) -> dict[str, str]:
            return installed_env(work, collector, work / outbox, BUGSNAG_APP_VERSION=version, **options)

        def finished(version: str) -> Run:
            """What the collector holds of a run the moment its runner has exited."""
            store = collector.store
            return Run(
                version,
                [record.event for record in store.events() if record.app_version == version],
                [record.session_id for record in store.sessions() if record.app_version == version],
            )

        def run(version: str, argv: list[str], cwd: Path, outbox: str = "outbox", **more: str) -> Run:
            # Every moment between two cells would start a new session by the idle rule: a run
            # named by its runner's command line is one session all the same.
            options = env(version, outbox, BUGSNAG_BACKGROUND_TIMEOUT="0") | more
            done = subprocess.run(argv, cwd=cwd, env=options, capture_output=True, text=True,
                                  timeout=RUN_TIMEOUT)
            assert "Traceback" not in done.stderr or version == "papermill", done.stderr[-3000:]
            return finished(version)

        jupyter, papermill = str(BIN / "jupyter"), str(BIN / "papermill")
        by_name = {
            "nbconvert": run("nbconvert", [jupyter, "nbconvert", "--execute", "--allow-errors",
                             "--to", "notebook", "jobs/analysis.ipynb", "--output-dir", "out"], work),
            "jupyter-execute": run("jupyter-execute", [jupyter, "execute", "--allow-errors",
                                   "analysis.ipynb"], work / "jobs"),
            # Called in a cell of another notebook (`!papermill …`): that notebook's
            # JPY_SESSION_NAME comes with the environment, and is not this run's notebook.
            "papermill": run("papermill", [papermill, "jobs/analysis.ipynb", "out/papermill.ipynb",
                             "-p", "threshold", "5", "-p", "token", "s3cret"], work,
                             JPY_SESSION_NAME=str(work / "scheduler.ipynb")),
            "edited": run("edited", [jupyter, "execute", "--allow-errors", "edited/analysis.ipynb"],
                          work),
        }
        run_with_nbclient(notebook, env("nbclient"), work)
        by_name["nbclient"] = finished("nbclient")
        run_like_jupyterlab(notebook, env("jupyterlab"), work)
        by_name["jupyterlab"] = finished("jupyterlab")
        # A short-lived container: the endpoint is down while the job runs, and the job's last
        # step is `bugsnag-ipython outbox flush`.
        collector.go_down()
        offline = run("offline", [jupyter, "execute", "--allow-errors", "jobs/analysis.ipynb"], work,
                      outbox="offline-outbox")
        collector.come_back()
        flush = [str(BIN / "bugsnag-ipython"), "outbox", "flush", "--dir", str(work / "offline-outbox")]
        subprocess.run(flush, env=env("offline"), capture_output=True, timeout=RUN_TIMEOUT, check=True)
        yield Runs(work, by_name, offline, finished("offline"))


def run_with_nbclient(notebook: Path, env: dict[str, str], work: Path) -> None:
    from nbclient import NotebookClient
    from nbclient.exceptions import CellExecutionError

    specs = KernelSpecManager(kernel_dirs=[str(work / "kernels")])
    manager = KernelManager(kernel_name=KERNEL_NAME, kernel_spec_manager=specs)
    nb = nbformat.read(notebook, as_version=4)
    client = NotebookClient(nb, km=manager, timeout=RUN_TIMEOUT,
                            resources={"metadata": {"path": str(notebook.parent)}})
    try:
        with pytest.raises(CellExecutionError):
            client.execute(env=env, cwd=str(notebook.parent))
    finally:
        manager.shutdown_kernel()  # given a kernel manager, nbclient leaves the kernel running


def run_like_jupyterlab(notebook: Path, env: dict[str, str], work: Path) -> None:
    """As JupyterLab runs it: the notebook's path in JPY_SESSION_NAME, the kernel in its folder,
    each cell's id in its execute request's metadata."""
    # `env` names the IPYTHONDIR without a profile: the installed kernel config loads the extension.
    kernel = Kernel(work / "lab", {**env, "JPY_SESSION_NAME": str(notebook)}, cwd=notebook.parent)
    try:
        for cell in nbformat.read(notebook, as_version=4).cells:
            if cell.cell_type == "code" and cell.source.strip():
                kernel.execute(cell.source, cell_id=cell.id)
    finally:
        kernel.shutdown()


def unhandled(run: Run) -> dict[str, Any]:
    found = [event for event in run.events if event["unhandled"]]
    assert len(found) == 1, (run.name, [e["exceptions"][0]["message"] for e in run.events])
    return found[0]


def frames(event: dict[str, Any]) -> list[tuple[str, int, str]]:
    return [(f["file"], f["lineNumber"], f["method"]) for f in event["exceptions"][0]["stacktrace"]]


RUNNERS = ["nbconvert", "jupyter-execute", "papermill", "nbclient", "jupyterlab"]


@pytest.mark.parametrize("name", RUNNERS)
def test_every_run_names_the_cells_as_jupyterlab_does(runs: Runs, name: str) -> None:
    event = unhandled(runs.by_name[name])

    assert event["exceptions"][0]["errorClass"] == "ValueError"
    assert frames(event) == FRAMES
    notebook = event["metaData"]["notebook"]
    assert (notebook["path"], notebook["cellId"]) == ("analysis.ipynb", "check-big")


def test_an_edited_cell_keeps_the_names_of_its_frames(runs: Runs) -> None:
    event = unhandled(runs.by_name["edited"])

    assert frames(event) == FRAMES
    assert "# threshold: a parameter" in event["exceptions"][0]["stacktrace"][0]["code"].values()


@pytest.mark.parametrize("name", RUNNERS)
def test_each_run_is_one_session_that_counts_its_error(runs: Runs, name: str) -> None:
    run = runs.by_name[name]
    event = unhandled(run)

    assert len(run.sessions) == 1
    assert event["session"]["id"] == run.sessions[0]
    assert event["session"]["events"] == {"handled": 0, "unhandled": 1}


@pytest.mark.parametrize("name", ["nbconvert", "jupyter-execute", "papermill", "nbclient"])
def test_the_run_is_on_the_event(runs: Runs, name: str) -> None:
    tab = unhandled(runs.by_name[name])["metaData"]["run"]

    assert tab["runner"] == {"jupyter-execute": "jupyter execute"}.get(name, name)
    assert Path(tab["inputPath"]) == runs.work / "jobs" / "analysis.ipynb"
    assert tab["startedAt"].endswith("Z")


def test_papermill_parameters_are_on_the_event_redacted(runs: Runs) -> None:
    event = unhandled(runs.by_name["papermill"])
    tab = event["metaData"]["run"]

    assert tab["parameters"] == {"threshold": 5, "token": "[REDACTED]"}
    assert Path(tab["outputPath"]) == runs.work / "out" / "papermill.ipynb"
    assert event["exceptions"][0]["message"] == "10 is over 5"


def test_nbconvert_names_the_notebook_it_wrote(runs: Runs) -> None:
    tab = unhandled(runs.by_name["nbconvert"])["metaData"]["run"]

    assert Path(tab["outputPath"]).is_file()


def test_jupyterlab_runs_have_no_run_tab(runs: Runs) -> None:
    assert "run" not in unhandled(runs.by_name["jupyterlab"])["metaData"]


def test_every_payload_of_a_run_is_delivered_before_its_runner_exits(runs: Runs) -> None:
    # Each run's payloads were read from the collector the moment its runner had exited.
    for name in ("nbconvert", "jupyter-execute", "papermill", "nbclient"):
        run = runs.by_name[name]
        assert (len(run.sessions), [e["unhandled"] for e in run.events]) == (1, [True]), name


def test_what_a_run_could_not_deliver_is_sent_by_outbox_flush(runs: Runs) -> None:
    assert (runs.offline.sessions, runs.offline.events) == ([], [])

    event = unhandled(runs.flushed)
    assert len(runs.flushed.sessions) == 1
    assert frames(event) == FRAMES
    assert event["metaData"]["run"]["runner"] == "jupyter execute"
