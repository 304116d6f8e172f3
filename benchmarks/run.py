"""`make bench`: every performance figure, each against a baseline measured in the same run."""

from __future__ import annotations

import platform
import sys
import tempfile
import time
from importlib import metadata
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks import cell_overhead, error_cost, load_cost, shutdown, throughput
from benchmarks.common import Row, format_table


def machine() -> str:
    import os

    names = ("ipython", "ipykernel", "requests", "bugsnag", "sentry-sdk")
    versions = ", ".join(f"{name} {_version(name)}" for name in names)
    return (f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}, "
            f"{versions}")


def _version(name: str) -> str:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return "not installed"


def compile_package() -> None:
    """Byte-compile the package, as installing the wheel does: an editable install compiles
    nothing, and where PYTHONDONTWRITEBYTECODE is set every import would compile it afresh."""
    import compileall

    compileall.compile_dir(str(Path(__file__).resolve().parent.parent / "bugsnag_ipython"), quiet=1)


def main() -> int:
    compile_package()
    rows: list[Row] = []
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="bugsnag-bench-") as scratch:
        work = Path(scratch)
        for step in (
            cell_overhead.measure_events,  # first: in process, before any kernel has run
            cell_overhead.measure_round_trip,
            load_cost.measure_load,
            load_cost.measure_first_cell,
            error_cost.measure,
            throughput.measure,
            shutdown.measure,
        ):
            print(f"… {step.__module__.split('.')[-1]}.{step.__name__}", end="", file=sys.stderr, flush=True)
            began = time.monotonic()
            rows += step(work / step.__name__)
            print(f" ({time.monotonic() - began:.0f} s)", file=sys.stderr, flush=True)
    print(f"… done in {time.monotonic() - started:.0f} s", file=sys.stderr)
    print(f"Machine: {machine()}\n")
    print(format_table(rows))
    return 0 if all(row.met is not False for row in rows) else 1


if __name__ == "__main__":
    raise SystemExit(main())
