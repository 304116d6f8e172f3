"""1. The extension's cost per cell, against a bare in-process `run_cell` of a trivial cell.

Whole-cell timings jitter more than the target, so the cost is measured directly: the two cell
events the extension listens to are triggered with real ExecutionInfo/ExecutionResult objects,
in interleaved batches with its callbacks attached and detached, on this thread's CPU clock.
"""

from __future__ import annotations

import os
from pathlib import Path

from benchmarks.common import (
    CollectorProcess,
    Row,
    median,
    paired_difference,
    thread_seconds,
    wall_seconds,
)

BATCH = 2000
PAIRS = 31
TARGET = 1.01


def measure(workdir: Path) -> list[Row]:
    with CollectorProcess(workdir / "collector") as collector:
        os.environ.update(collector.env(workdir / "persistence"))
        from IPython.core.interactiveshell import ExecutionInfo, ExecutionResult, InteractiveShell

        shell = InteractiveShell.instance()
        shell.run_line_magic("load_ext", "bugsnag_ipython")
        extension = shell._bugsnag_ipython
        info = ExecutionInfo("x = 1", True, False, True, None)
        result = ExecutionResult(info)
        events = shell.events

        def one_cell() -> None:
            events.trigger("pre_run_cell", info)
            events.trigger("post_run_cell", result)

        def attach() -> None:
            events.register("pre_run_cell", extension.pre_run_cell)
            events.register("post_run_cell", extension.post_run_cell)

        def detach() -> None:
            events.unregister("pre_run_cell", extension.pre_run_cell)
            events.unregister("post_run_cell", extension.post_run_cell)

        def attached() -> float:
            return thread_seconds(one_cell, BATCH)

        def detached() -> float:
            detach()
            try:
                return thread_seconds(one_cell, BATCH)
            finally:
                attach()

        cost = median(paired_difference(attached, detached, PAIRS))

        def bare_cell() -> None:
            shell.run_cell("pass", store_history=True)

        def cells_with() -> float:
            return wall_seconds(bare_cell, 200)

        def cells_without() -> float:
            extension.uninstall()
            try:
                return wall_seconds(bare_cell, 200)
            finally:
                extension.install(launch=False)

        pairs = [(cells_with(), cells_without()) for _ in range(15)]
        bare = median([b for _, b in pairs])
        whole = median([a for a, _ in pairs]) / bare
        ratio = (bare + cost) / bare
        shell.run_line_magic("unload_ext", "bugsnag_ipython")
    return [
        Row("per-cell cost (events, CPU)", f"{cost * 1e6:.2f} µs", "", None),
        Row("bare run_cell('pass'), wall", f"{bare * 1e6:.0f} µs", "", None),
        Row("per-cell ratio (bare + cost) / bare", f"{ratio:.4f}", f"≤ {TARGET}", ratio <= TARGET),
        Row("whole-cell ratio, cross-check", f"{whole:.3f}", "(noisy)", None),
    ]
