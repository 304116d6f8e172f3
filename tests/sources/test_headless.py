"""A headless run is told from the command line of the process that started the kernel
(`JPY_PARENT_PID`): real processes here, whose command lines look like the runners'."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from bugsnag_ipython.sources.headless import detect

# Runners are told by their command line, read from /proc (Linux).
pytestmark = pytest.mark.skipif(not Path("/proc/self/cmdline").exists(), reason="no /proc")
SLEEPER = "import time\ntime.sleep(60)\n"
Start = Callable[..., int]


@pytest.fixture
def parent(tmp_path: Path) -> Iterator[Start]:
    """Start a process from a script of a given name with arguments; yields a starter."""
    started: list[subprocess.Popen[bytes]] = []

    def start(script: str, *args: str) -> int:
        path = tmp_path / script
        path.write_text(SLEEPER)
        process = subprocess.Popen([sys.executable, str(path), *args], cwd=tmp_path)
        started.append(process)
        # A process's command line reads empty for a moment after its exec; a runner has been
        # running for long when it starts a kernel.
        deadline = time.monotonic() + 10
        while not Path(f"/proc/{process.pid}/cmdline").read_bytes() and time.monotonic() < deadline:
            time.sleep(0.01)
        return process.pid

    yield start
    for process in started:
        process.kill()
        process.wait()


def test_a_kernel_started_by_papermill_is_a_run_of_its_notebook(parent: Start, tmp_path: Path) -> None:
    pid = parent("papermill", "jobs/a.ipynb", "out/a.ipynb", "-p", "day", "2026-12-02")

    run = detect({"JPY_PARENT_PID": str(pid)}, str(tmp_path), 0.0)

    assert run is not None and run.known_at_launch
    assert run.command is not None and run.command.runner == "papermill"
    assert run.command.notebooks == (str(tmp_path / "jobs" / "a.ipynb"),)  # from the runner's folder
    assert run.project_root() == str(tmp_path / "jobs")


def test_a_runner_called_in_a_notebooks_cell_outranks_that_notebooks_name(
    parent: Start, tmp_path: Path
) -> None:
    pid = parent("jupyter-execute", "report.ipynb")
    env = {"JPY_PARENT_PID": str(pid), "JPY_SESSION_NAME": str(tmp_path / "scheduler.ipynb")}

    run = detect(env, str(tmp_path), 0.0)

    assert run is not None and run.outranks_frontend
    assert run.notebook_path([""]) == str(tmp_path / "report.ipynb")


def test_a_kernel_started_by_another_kernel_ignores_the_name_it_inherited(
    parent: Start, tmp_path: Path
) -> None:
    # nbclient called in a cell: the new kernel's parent is the notebook's own kernel.
    pid = parent("ipykernel_launcher.py", "-f", "kernel-1.json")
    env = {"JPY_PARENT_PID": str(pid), "JPY_SESSION_NAME": str(tmp_path / "scheduler.ipynb")}

    run = detect(env, str(tmp_path), 0.0)

    assert run is not None and run.outranks_frontend and not run.known_at_launch
    assert run.notebook_path(["", "print('no notebook here has this')"]) is None


def test_a_notebook_a_person_opened_is_no_run(tmp_path: Path) -> None:
    # Jupyter Server started the kernel (here: this test's process) and named its notebook.
    env = {"JPY_PARENT_PID": str(os.getpid()), "JPY_SESSION_NAME": "a.ipynb"}

    assert detect(env, str(tmp_path), 0.0) is None
    assert detect({}, str(tmp_path), 0.0) is None  # not started by jupyter_client at all


VOILA_PAGE = {"SERVER_SOFTWARE": "voila/0.5.13", "VOILA_PREHEAT": "False"}


def test_a_standalone_voila_kernel_renders_the_notebook_voila_names(parent: Start, tmp_path: Path) -> None:
    pid = parent("voila", "--no-browser", "--port=8866", "board/dashboard.ipynb")
    env = {"JPY_PARENT_PID": str(pid), "SCRIPT_NAME": "/", **VOILA_PAGE}

    run = detect(env, str(tmp_path / "board"), 0.0)

    # A person's dashboard: named like a run's notebook, sessions and tabs as in JupyterLab.
    assert run is not None and run.dashboard and run.outranks_frontend and not run.known_at_launch
    assert run.notebook_path([""]) == str(tmp_path / "board" / "dashboard.ipynb")
    assert run.tab([""]) is None


def test_a_voila_page_in_a_jupyter_server_names_its_notebook(parent: Start, tmp_path: Path) -> None:
    pid = parent("jupyter-server", "--no-browser")
    env = {"JPY_PARENT_PID": str(pid), "SCRIPT_NAME": "/voila/render/reports/dashboard.ipynb", **VOILA_PAGE}

    run = detect(env, str(tmp_path / "reports"), 0.0)

    assert run is not None and run.dashboard
    assert run.notebook_path([""]) == str(tmp_path / "reports" / "dashboard.ipynb")


def test_a_kernel_started_from_a_dashboards_cell_is_no_dashboard(parent: Start, tmp_path: Path) -> None:
    # nbclient called in a dashboard's cell: Voilà's variables came with the environment.
    pid = parent("ipykernel_launcher.py", "-f", "kernel-1.json")
    env = {"JPY_PARENT_PID": str(pid), "SCRIPT_NAME": "/voila/render/dashboard.ipynb", **VOILA_PAGE}

    run = detect(env, str(tmp_path), 0.0)

    assert run is not None and not run.dashboard
    assert run.notebook_path(["", "print('no notebook here has this')"]) is None


def test_a_command_line_the_reader_cannot_make_sense_of_is_no_runners(
    parent: Start, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from bugsnag_ipython.sources import headless

    def unforeseen(*args: object) -> None:
        raise IndexError("unforeseen")

    monkeypatch.setattr(headless, "runner_command", unforeseen)
    pid = parent("papermill", "jobs/a.ipynb", "out/a.ipynb")
    run = detect({"JPY_PARENT_PID": str(pid)}, str(tmp_path), 0.0)  # the extension still loads
    assert run is not None and run.command is None  # the notebook search may still tell
