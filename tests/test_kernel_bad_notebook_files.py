"""A run's notebook is used whatever else lies beside it: symlink loops, a FIFO, a directory, a
link to a device or out of the folder, a file over the size limit, deeply nested or ill-shaped
JSON. Real runs (papermill and `jupyter execute` from the command line, papermill and nbclient
called from Python, whose notebook is found by searching the kernel's folder) in real kernels
that load the extension from the installed kernel config, against the collector.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from bugsnag_ipython.demo import KERNEL_NAME
from bugsnag_ipython.report.notebook_files import MAX_NOTEBOOK_BYTES
from tests.conftest import collecting
from tests.kernel import installed_env
from tests.test_kernel_headless import BIN, FRAMES, RUN_TIMEOUT, frames, run_with_nbclient, write_notebook

pytest.importorskip("papermill")
pytestmark = [
    pytest.mark.skipif(not Path("/proc/self/cmdline").exists(), reason="no /proc"),
    pytest.mark.timeout(300),  # four runs in the first test's setup: room for a busy machine
]

PAPERMILL_FROM_PYTHON = (
    "import sys, papermill\n"
    "papermill.execute_notebook(sys.argv[1], sys.argv[2], kernel_name=sys.argv[3])\n"
)


def plant_bad_files(folder: Path, notebook: Path) -> None:
    """Beside `notebook`, each kind of file that once stopped the folder search or the reader."""
    text = notebook.read_text()
    (folder / "loop-a.ipynb").symlink_to("loop-b.ipynb")
    (folder / "loop-b.ipynb").symlink_to("loop-a.ipynb")
    (folder / "self.ipynb").symlink_to("self.ipynb")
    os.mkfifo(folder / "pipe.ipynb")  # an open without O_NONBLOCK waits for a writer forever
    (folder / "folder.ipynb").mkdir()
    (folder / "zeros.ipynb").symlink_to("/dev/zero")  # read to the end, it never ends
    elsewhere = folder.parent / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "copy.ipynb").write_text(text.replace('"id": "check-big"', '"id": "outside"'))
    (folder / "outside.ipynb").symlink_to(elsewhere / "copy.ipynb")  # out of the folder
    with open(folder / "huge.ipynb", "wb") as huge:  # over the limit (sparse: no disk used)
        huge.write(text.encode())
        huge.truncate(MAX_NOTEBOOK_BYTES + 1)
    # The notebook's own text, so that the search's substring test picks it up, and then JSON
    # nested 100,000 deep (RecursionError) or cells of the wrong shape (sources of numbers).
    document = json.loads(text)
    nested = json.dumps({**document, "metadata": {"deep": "@"}})
    (folder / "nested.ipynb").write_text(nested.replace('"@"', "[" * 100_000 + "]" * 100_000))
    ill_shaped = {"cells": [{"cell_type": "code", "source": [1, {"a": 2}], "id": 3, "metadata": []},
                            "a cell that is a string"],
                  "metadata": {"papermill": "not a mapping", "copied": text}}
    (folder / "ill-shaped.ipynb").write_text(json.dumps(ill_shaped))
    unreadable = folder / "unreadable.ipynb"  # root reads it anyway: then it is one more decoy
    unreadable.write_text(nested)
    unreadable.chmod(0)


@pytest.fixture(scope="module")
def events(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, dict[str, Any]]]:
    work = tmp_path_factory.mktemp("bad-files")
    jobs = work / "jobs"
    notebook = write_notebook(jobs / "analysis.ipynb")
    plant_bad_files(jobs, notebook)
    with collecting(work) as collector:

        def env(version: str) -> dict[str, str]:
            return installed_env(work, collector, BUGSNAG_APP_VERSION=version)

        def run(version: str, argv: list[str]) -> None:
            # Each run ends with the notebook's error: its exit status is not 0.
            subprocess.run(argv, cwd=jobs, env=env(version), capture_output=True, timeout=RUN_TIMEOUT)

        run("papermill", [str(BIN / "papermill"), "analysis.ipynb", "papermill-out.ipynb"])
        run("jupyter-execute", [str(BIN / "jupyter"), "execute", "--allow-errors", "analysis.ipynb"])
        # No command line names these: the notebook is searched for among the folder's files.
        run("papermill-python", [sys.executable, "-c", PAPERMILL_FROM_PYTHON, "analysis.ipynb",
                                 "from-python.ipynb", KERNEL_NAME])
        run_with_nbclient(notebook, env("nbclient"), work)
        found: dict[str, dict[str, Any]] = {}
        for record in collector.store.events():
            assert record.app_version not in found, f"two events of {record.app_version}"
            found[record.app_version] = record.event
        yield found


RUNS = ["papermill", "jupyter-execute", "papermill-python", "nbclient"]


@pytest.mark.parametrize("name", RUNS)
def test_the_runs_notebook_names_the_frames_beside_bad_files(
    events: dict[str, dict[str, Any]], name: str
) -> None:
    event = events[name]

    assert event["unhandled"] and frames(event) == FRAMES
    notebook = event["metaData"]["notebook"]
    assert (notebook["path"], notebook["cellId"]) == ("analysis.ipynb", "check-big")


@pytest.mark.parametrize("name", RUNS)
def test_the_run_tab_names_the_real_notebook(events: dict[str, dict[str, Any]], name: str) -> None:
    tab = events[name]["metaData"]["run"]

    assert Path(tab["inputPath"]).name == "analysis.ipynb"
    assert Path(tab["inputPath"]).parent.name == "jobs"
