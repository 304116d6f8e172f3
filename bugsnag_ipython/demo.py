"""`make demo`: run the demo notebook in a real kernel of this interpreter (with a private IPython
profile and persistence directory) against the local collector, then print its report."""

from __future__ import annotations

import json
import os
import shutil
import sys
import threading
import time
from pathlib import Path
from typing import Any, NamedTuple

from .collector import Collector, Report, build_report, format_report

BACKGROUND_TIMEOUT = 2.0
KERNEL_NAME = "bugsnag-ipython-python"


def make_kernelspec(root: Path) -> Path:
    """A kernelspec for this interpreter; returns the folder to give KernelSpecManager."""
    spec_dir = root / "kernels" / KERNEL_NAME
    spec_dir.mkdir(parents=True, exist_ok=True)
    argv = [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"]
    spec = {"argv": argv, "display_name": "Python (bugsnag-ipython)", "language": "python"}
    (spec_dir / "kernel.json").write_text(json.dumps(spec))
    return root / "kernels"


def make_ipython_dir(root: Path, kernel_config: str = "") -> Path:
    """A private IPYTHONDIR whose kernel profile switches the installed auto-load off, so that
    `%load_ext` in the notebook is what loads the extension; `kernel_config` is added to it."""
    profile = root / "ipython" / "profile_default"
    profile.mkdir(parents=True, exist_ok=True)
    config = "c = get_config()  # noqa\nc.InteractiveShellApp.extra_extensions = []\n"
    (profile / "ipython_kernel_config.py").write_text(config + kernel_config + "\n")
    return root / "ipython"


def kernel_environment(ipython_dir: Path, extra: dict[str, str]) -> dict[str, str]:
    """This process's environment without BugSnag or Jupyter session variables, plus `extra`."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("BUGSNAG_", "JPY_"))}
    return {**env, "IPYTHONDIR": str(ipython_dir), "PYTHONUNBUFFERED": "1", **extra}


class DemoResult(NamedTuple):
    """What the demo's run left: the collector's report and the executed notebook."""

    report: Report
    executed: Path
    seconds: float


def run_demo(notebook: Path, workdir: Path) -> DemoResult:
    """Run `notebook` in a fresh kernel against a collector, everything kept in `workdir`."""
    import nbformat
    from jupyter_client.kernelspec import KernelSpecManager
    from jupyter_client.manager import KernelManager
    from nbclient import NotebookClient

    started = time.monotonic()
    shutil.rmtree(workdir, ignore_errors=True)
    workdir.mkdir(parents=True)
    with Collector(workdir / "collector.sqlite") as collector:
        env = kernel_environment(
            make_ipython_dir(workdir),
            {
                "BUGSNAG_API_KEY": "0123456789abcdef0123456789abcdef",  # any key: the collector is local
                "BUGSNAG_NOTIFY_ENDPOINT": collector.notify_url,
                "BUGSNAG_SESSIONS_ENDPOINT": collector.sessions_url,
                "BUGSNAG_BACKGROUND_TIMEOUT": str(BACKGROUND_TIMEOUT),
                "BUGSNAG_PERSISTENCE_DIRECTORY": str(workdir / "persistence"),
                "BUGSNAG_APP_VERSION": "1.0.0",
                "BUGSNAG_RELEASE_STAGE": "demo",
            },
        )
        specs = KernelSpecManager(kernel_dirs=[str(make_kernelspec(workdir))])
        manager = KernelManager(kernel_name=KERNEL_NAME, kernel_spec_manager=specs)
        nb = nbformat.read(notebook, as_version=4)

        def after_cell(cell: Any, **_: Any) -> None:
            # Idle between cells, not a sleep in one: only background time starts a new session.
            if "idle-gap" in cell.get("metadata", {}).get("tags", []):
                time.sleep(BACKGROUND_TIMEOUT + 0.5)

        client = NotebookClient(nb, km=manager, timeout=60, on_cell_complete=after_cell,
                                resources={"metadata": {"path": str(notebook.parent)}})
        # The kernel's own log (ours included) goes to a file, not between the report's lines.
        with open(workdir / "kernel.log", "w") as kernel_log:
            client.execute(env=env, cwd=str(notebook.parent), stderr=kernel_log)
        executed = workdir / "demo.executed.ipynb"
        nbformat.write(nb, executed)
        return DemoResult(build_report(collector.store), executed, time.monotonic() - started)


def main() -> int:
    """Run the demo, print its report, and serve the report's page until Ctrl-C from a terminal."""
    root = Path(__file__).resolve().parent.parent
    notebook = root / "notebooks" / "demo.ipynb"
    workdir = root / ".demo"
    print(f"Running {notebook.relative_to(root)} in a real kernel against the local collector…")
    result = run_demo(notebook, workdir)
    print(f"Executed notebook: {result.executed.relative_to(root)} ({result.seconds:.1f}s); "
          f"kernel log: {(workdir / 'kernel.log').relative_to(root)}\n")
    print(format_report(result.report))
    db = workdir / "collector.sqlite"
    if not sys.stdin.isatty():
        print(f"The report as a web page: run `bugsnag-ipython collector --db {db.relative_to(root)}` and "
              "open the report address it prints.")
        return 0
    with Collector(db) as collector:
        print(f"The report as a web page: {collector.url}/ (Ctrl-C to stop)", flush=True)
        try:
            threading.Event().wait()
        except KeyboardInterrupt:
            print()
    return 0
