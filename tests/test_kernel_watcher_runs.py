"""Scheduled runs (`jupyter execute`, papermill) with nothing started after them: a run the OOM
killer ends has its death at the endpoint within a second, before its runner has exited; a run
that ends well leaves no process behind."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_notebook

from bugsnag_ipython.demo import KERNEL_NAME
from tests.kernel import installed_env
from tests.test_kernel_deaths import WAIT, deaths
from tests.test_kernel_watcher import SOON, watchers
from tests.waits import eventually

pytest.importorskip("papermill")
BIN = Path(sys.executable).parent
RUN_TIMEOUT = 90.0


def notebook(path: Path, *sources: str) -> Path:
    made = new_notebook(cells=[new_code_cell(source, id=f"cell-{n}") for n, source in enumerate(sources)])
    made.metadata.kernelspec = {"name": KERNEL_NAME, "display_name": "Python", "language": "python"}
    nbformat.write(made, path)
    return path


def runners(work: Path) -> dict[str, list[str]]:
    return {"jupyter-execute": [str(BIN / "jupyter"), "execute", "run.ipynb"],
            "papermill": [str(BIN / "papermill"), "run.ipynb", str(work / "out.ipynb")]}


def oom_kills(cgroup: Path) -> int:
    for line in (cgroup / "memory.oom_control").read_text().splitlines():
        if line.startswith("oom_kill "):
            return int(line.split()[1])
    raise AssertionError("no oom_kill count")


@pytest.mark.parametrize("runner", ["jupyter-execute", "papermill"])
def test_a_run_the_oom_killer_ends_is_reported_within_a_second_before_its_runner_exits(
    tmp_path: Path, collector: Any, limited_cgroup: Path, runner: str
) -> None:
    notebook(tmp_path / "run.ipynb", "rows = list(range(10))", "hog = bytearray(1 << 30)", "print('done')")
    # The runner moves itself into the limited cgroup before it starts: the kernel and its
    # watcher are born there, as in a job container with a memory limit.
    argv = ["sh", "-c", f'echo $$ > {limited_cgroup / "cgroup.procs"} && exec "$@"', "sh",
            *runners(tmp_path)[runner]]
    run = subprocess.Popen(argv, cwd=tmp_path, env=installed_env(tmp_path, collector),
                           stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    killed = reported = exited = None
    deadline = time.monotonic() + RUN_TIMEOUT
    while exited is None or reported is None:
        now = time.monotonic()
        assert now < deadline, "the run neither ended nor was reported"
        if killed is None and oom_kills(limited_cgroup) > 0:
            killed = now
        if reported is None and deaths(collector):
            reported = now
        if exited is None and run.poll() is not None:
            exited = now
        time.sleep(0.01)
    assert run.returncode != 0 and killed is not None, run.stderr.read() if run.stderr else ""
    if run.stderr:
        run.stderr.close()
    assert reported < exited and reported - killed < SOON, (reported - killed, exited - killed)
    [death] = deaths(collector)
    assert death.message == ("killed while running In [2] (out of memory: the cgroup's oom_kill count "
                             "went up)")
    assert death.event["metaData"]["notebook"]["cellSource"] == "hog = bytearray(1 << 30)"
    print(f"{runner}: reported {reported - killed:.3f} s after the OOM kill, "
          f"its runner exited {exited - killed:.3f} s after it")
    assert watchers(tmp_path / "outbox") == set()


@pytest.mark.parametrize("runner", ["jupyter-execute", "papermill"])
def test_a_run_that_ends_well_reports_no_death_and_leaves_no_process(
    tmp_path: Path, collector: Any, runner: str
) -> None:
    notebook(tmp_path / "run.ipynb", "rows = list(range(10))", "print(sum(rows))")
    done = subprocess.run(runners(tmp_path)[runner], cwd=tmp_path, env=installed_env(tmp_path, collector),
                          capture_output=True, timeout=RUN_TIMEOUT)
    assert done.returncode == 0, done.stderr[-2000:]
    assert collector.wait_for("sessions", 1, WAIT)
    assert eventually(lambda: watchers(tmp_path / "outbox") == set(), WAIT), watchers(tmp_path / "outbox")
    assert deaths(collector) == []
    assert list((tmp_path / "outbox" / "kernels").iterdir()) == []
