"""2. The cost of `%load_ext bugsnag_ipython`, and of its background start-up on the first cell.

The load is timed in fresh interpreters with IPython already imported, against the start of
IPython's shell (`InteractiveShell.instance()`) timed just before it in the same interpreter, on
the main thread's CPU clock; an import hook records which thread first imported `requests`,
`ipywidgets` and `platformdirs` (none may be the main thread during the load). The first trivial
cell after kernel start is timed over the wire, in fresh kernels with and without the extension
loaded by kernel config; what the extension adds to it is set against the kernel's start.
"""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path
from typing import Any

from benchmarks.common import CollectorProcess, Row, median, milliseconds, run_python

PROCESSES = 15
KERNELS = 20
# The load on the main thread's CPU clock, against the IPython shell's own start in the same
# interpreter: wall time on a busy machine also counts the waits for a core and for the GIL,
# which the background start-up's imports hold meanwhile. Loading the extension may cost the
# main thread no more than IPython's own shell start.
LOAD_TARGET = 1.0
# What the extension adds to the first cell after kernel start, against that start.
FIRST_CELL_TARGET = 0.01

_LOAD = r"""
import json, sys, threading, time
from importlib.abc import MetaPathFinder
watched = {"requests", "ipywidgets", "platformdirs"}
first = {}
class Watch(MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name in watched and name not in first:
            first[name] = threading.current_thread() is threading.main_thread()
        return None
from IPython.core.interactiveshell import InteractiveShell
wall, cpu = time.perf_counter(), time.thread_time()
shell = InteractiveShell.instance()
shell_wall, shell_cpu = time.perf_counter() - wall, time.thread_time() - cpu
sys.meta_path.insert(0, Watch())
wall, cpu = time.perf_counter(), time.thread_time()
shell.run_line_magic("load_ext", "bugsnag_ipython")
load_wall, load_cpu = time.perf_counter() - wall, time.thread_time() - cpu
on_main = sorted(name for name, main in first.items() if main)
print(json.dumps({"load_wall": load_wall, "load_cpu": load_cpu, "shell_wall": shell_wall,
                  "shell_cpu": shell_cpu, "main_thread_imports": on_main}))
"""


def measure_load(workdir: Path) -> list[Row]:
    with CollectorProcess(workdir / "collector") as collector:
        env = collector.env(workdir / "persistence")
        runs: list[dict[str, Any]] = [run_python(_LOAD, env) for _ in range(PROCESSES)]
    load_wall = median([run["load_wall"] for run in runs])
    shell_wall = median([run["shell_wall"] for run in runs])
    # Each process's own ratio: what slows one process down slows down both of its figures.
    ratio = median([run["load_cpu"] / run["shell_cpu"] for run in runs])
    imported = sorted({name for run in runs for name in run["main_thread_imports"]})
    return [
        Row("%load_ext; IPython shell start (wall, medians)",
            f"{milliseconds(load_wall)}; {milliseconds(shell_wall)}", "", None),
        Row("  %load_ext / shell start, main thread CPU", f"{ratio:.3f}", f"≤ {LOAD_TARGET}",
            ratio <= LOAD_TARGET),
        Row("imported on the main thread at load", ", ".join(imported) or "none", "none", not imported),
    ]


def _first_cell(root: Path, env: dict[str, str], kernel_config: str) -> tuple[float, float]:
    """The kernel's start (to its first kernel_info reply) and the first cell's round trip."""
    from jupyter_client.kernelspec import KernelSpecManager
    from jupyter_client.manager import KernelManager

    from bugsnag_ipython.demo import kernel_environment, make_ipython_dir, make_kernelspec

    specs = KernelSpecManager(kernel_dirs=[str(make_kernelspec(root))])
    manager = KernelManager(kernel_name="bugsnag-ipython-python", kernel_spec_manager=specs)
    launched = time.perf_counter()
    manager.start_kernel(
        env=kernel_environment(make_ipython_dir(root, kernel_config), env),
        stderr=subprocess.DEVNULL,  # the kernel's start-up warnings are not the benchmark's
    )
    client = manager.blocking_client()
    client.start_channels()
    try:
        client.wait_for_ready(timeout=60)
        started = time.perf_counter()
        reply = client.execute_interactive("x = 1", timeout=60, output_hook=lambda msg: None)
        elapsed = time.perf_counter() - started
        assert reply["content"]["status"] == "ok", json.dumps(reply["content"])
        return started - launched, elapsed
    finally:
        client.stop_channels()
        manager.shutdown_kernel(now=True)


def measure_first_cell(workdir: Path) -> list[Row]:
    autoload = "c.InteractiveShellApp.extensions = ['bugsnag_ipython']"
    with CollectorProcess(workdir / "collector") as collector:
        env = collector.env(workdir / "persistence")
        with_it, without = [], []
        for n in range(KERNELS):  # interleaved, so drift hits both alike
            with_it.append(_first_cell(workdir / f"with-{n}", env, autoload))
            without.append(_first_cell(workdir / f"without-{n}", env, ""))
    first_with = median([cell for _, cell in with_it])
    first_without = median([cell for _, cell in without])
    start = median([started for started, _ in without])
    added = (first_with - first_without) / start
    return [
        Row("first cell after start, with / without", f"{first_with / first_without:.3f} "
            f"({milliseconds(first_with)} vs {milliseconds(first_without)})", "(noisy)", None),
        Row("  added to the first cell / the kernel's start", f"{added * 100:.2f} % of "
            f"{milliseconds(start)}", f"≤ {FIRST_CELL_TARGET * 100:.0f} %", added <= FIRST_CELL_TARGET),
    ]
