"""2. The cost of `%load_ext bugsnag_ipython`, and of its background start-up on the first cell.

The load is timed in fresh interpreters with IPython already imported, against the start of
IPython's shell (`InteractiveShell.instance()`) timed just before it in the same interpreter; an
import hook records which thread first imported `requests`, `ipywidgets` and `platformdirs`
(none may be the main thread during the load). The first trivial cell after kernel start is
timed over the wire, in fresh kernels with and without the extension loaded by kernel config.
"""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path

from benchmarks.common import CollectorProcess, Row, median, milliseconds, run_python

PROCESSES = 15
KERNELS = 20
LOAD_TARGET = 0.25  # of the IPython shell's own start, in the same interpreter
FIRST_CELL_TARGET = 1.1

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
started = time.perf_counter()
shell = InteractiveShell.instance()
shell_start = time.perf_counter() - started
sys.meta_path.insert(0, Watch())
started = time.perf_counter()
shell.run_line_magic("load_ext", "bugsnag_ipython")
elapsed = time.perf_counter() - started
on_main = sorted(name for name, main in first.items() if main)
print(json.dumps({"seconds": elapsed, "shell_start": shell_start, "main_thread_imports": on_main}))
"""


def measure_load(workdir: Path) -> list[Row]:
    with CollectorProcess(workdir / "collector") as collector:
        env = collector.env(workdir / "persistence")
        runs = [run_python(_LOAD, env) for _ in range(PROCESSES)]
    seconds = median([float(run["seconds"]) for run in runs])  # type: ignore[arg-type]
    shell_start = median([float(run["shell_start"]) for run in runs])  # type: ignore[arg-type]
    # Each process's own ratio: a process that the machine slows down slows down both.
    ratio = median([float(run["seconds"]) / float(run["shell_start"]) for run in runs])  # type: ignore[arg-type]
    imported = sorted({name for run in runs for name in run["main_thread_imports"]})  # type: ignore[attr-defined]
    return [
        Row("%load_ext time; IPython shell start (medians)",
            f"{milliseconds(seconds)}; {milliseconds(shell_start)}", "", None),
        Row("  %load_ext / shell start, same interpreter", f"{ratio:.3f}", f"≤ {LOAD_TARGET}",
            ratio <= LOAD_TARGET),
        Row("imported on the main thread at load", ", ".join(imported) or "none", "none", not imported),
    ]


def _first_cell(root: Path, env: dict[str, str], kernel_config: str) -> float:
    from jupyter_client.kernelspec import KernelSpecManager
    from jupyter_client.manager import KernelManager

    from bugsnag_ipython.demo import kernel_environment, make_ipython_dir, make_kernelspec

    specs = KernelSpecManager(kernel_dirs=[str(make_kernelspec(root))])
    manager = KernelManager(kernel_name="bugsnag-ipython-python", kernel_spec_manager=specs)
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
        return elapsed
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
    ratio = median(with_it) / median(without)
    return [
        Row("first cell after start, with / without", f"{ratio:.3f} ({milliseconds(median(with_it))}"
            f" vs {milliseconds(median(without))})", f"≤ {FIRST_CELL_TARGET}", ratio <= FIRST_CELL_TARGET),
    ]
