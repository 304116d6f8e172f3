"""What every benchmark shares: medians, paired measurements, fresh interpreters, the table."""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
API_KEY = "0123456789abcdef0123456789abcdef"


@dataclass(frozen=True)
class Row:
    """One line of the table: what was measured, the figure, the target, and whether it is met."""

    name: str
    figure: str
    target: str
    met: bool | None  # None: informative, no target


def median(values: list[float]) -> float:
    return statistics.median(values)


def paired_difference(
    with_it: Callable[[], float], without_it: Callable[[], float], pairs: int
) -> list[float]:
    """Run the two alternately and return the differences: drift and noise hit both alike."""
    differences = []
    for index in range(pairs):
        if index % 2:
            b, a = without_it(), with_it()
        else:
            a, b = with_it(), without_it()
        differences.append(a - b)
    return differences


def thread_seconds(action: Callable[[], object], repeat: int) -> float:
    """CPU seconds of this thread per call of `action`: other threads' work is not counted."""
    started = time.thread_time_ns()
    for _ in range(repeat):
        action()
    return (time.thread_time_ns() - started) / repeat / 1e9


def wall_seconds(action: Callable[[], object], repeat: int) -> float:
    """Elapsed seconds per call of `action`, as the user waits for it."""
    started = time.perf_counter()
    for _ in range(repeat):
        action()
    return (time.perf_counter() - started) / repeat


def run_python(code: str, env: dict[str, str] | None = None, timeout: float = 120) -> dict[str, object]:
    """Run `code` in a fresh interpreter; it prints one JSON object as its last line."""
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("BUGSNAG_")}
    full_env.update(env or {})
    done = subprocess.run(
        [sys.executable, "-c", code], env=full_env, capture_output=True, text=True,
        timeout=timeout, check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"benchmark child failed: {done.stderr[-2000:]}")
    result: dict[str, object] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def microseconds(seconds: float) -> str:
    return f"{seconds * 1e6:.1f} µs"


def milliseconds(seconds: float) -> str:
    return f"{seconds * 1e3:.2f} ms"


def format_table(rows: list[Row]) -> str:
    header = ("benchmark", "measured", "target", "")
    lines = [header] + [
        (row.name, row.figure, row.target, {True: "ok", False: "MISSED", None: ""}[row.met])
        for row in rows
    ]
    widths = [max(len(line[i]) for line in lines) for i in range(4)]
    out = []
    for number, line in enumerate(lines):
        out.append("  ".join(cell.ljust(width) for cell, width in zip(line, widths, strict=True)).rstrip())
        if number == 0:
            out.append("  ".join("-" * width for width in widths))
    return "\n".join(out)


class CollectorProcess:
    """The local collector in its own process, so it does not compete for this one's GIL."""

    def __init__(self, workdir: Path) -> None:
        workdir.mkdir(parents=True, exist_ok=True)
        self.db = workdir / "collector.sqlite"
        self.process = subprocess.Popen(
            [sys.executable, "-m", "bugsnag_ipython", "collector", "--port", "0", "--db", str(self.db)],
            stdout=subprocess.PIPE, text=True,
        )
        assert self.process.stdout is not None
        words = self.process.stdout.readline().split()
        self.notify_url = words[words.index("notify") + 1]
        self.sessions_url = words[words.index("sessions") + 1]

    def env(self, persistence: Path) -> dict[str, str]:
        return {
            "BUGSNAG_API_KEY": API_KEY,
            "BUGSNAG_NOTIFY_ENDPOINT": self.notify_url,
            "BUGSNAG_SESSIONS_ENDPOINT": self.sessions_url,
            "BUGSNAG_PERSISTENCE_DIRECTORY": str(persistence),
        }

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(10)

    def __enter__(self) -> CollectorProcess:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()
