"""Voilà dashboards report a notebook's errors named as JupyterLab names them.

Voilà is started for real, on its own (`voila dashboard.ipynb`) and as a Jupyter Server
extension (`/voila/render/<path>`); a page is fetched over HTTP, which makes Voilà execute the
notebook in a kernel that loads the extension from the installed kernel config and reports to
the collector. The same notebook is also run the way JupyterLab runs it, for comparison. No
browser: the cells run while the page is rendered.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import requests

from tests.conftest import collecting
from tests.kernel import installed_env
from tests.servers import serving
from tests.test_kernel_headless import RUN_TIMEOUT, frames, run_like_jupyterlab, write_notebook

pytest.importorskip("voila", reason="voila is missing: pip install -e '.[browser]'")
# Two servers and a kernel start in the first test's setup: room for a busy machine.
pytestmark = pytest.mark.timeout(300)

FRAMES = [("dashboard.ipynb#cell-helpers", 3, "check"), ("dashboard.ipynb#cell-check-big", 1, "<module>")]


@dataclass
class Dashboards:
    events: dict[str, list[dict[str, Any]]]  # by app version: one per way of running


@pytest.fixture(scope="module")
def dashboards(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Dashboards]:
    work = tmp_path_factory.mktemp("dashboards")
    standalone = write_notebook(work / "board" / "dashboard.ipynb")
    write_notebook(work / "root" / "reports" / "dashboard.ipynb")
    with collecting(work) as collector:

        def env(version: str) -> dict[str, str]:
            return installed_env(work, collector, BUGSNAG_APP_VERSION=version,
                                 JUPYTER_CONFIG_DIR=str(work / "jupyter-config"),
                                 JUPYTER_RUNTIME_DIR=str(work / "runtime"))

        def rendered(version: str, argv: list[str], cwd: Path, page: str) -> None:
            before = len(events())  # counted first: the event may arrive before the page is whole
            # Once it listens: a request could render a notebook.
            with serving(argv, cwd, env(version), work / f"{version}.log") as url:
                shown = requests.get(url + page, timeout=RUN_TIMEOUT)
                assert shown.status_code == 200, shown.text[-2000:]
                # Delivered from the kernel's own thread: the page may be whole before it is.
                assert collector.wait_for("events", before + 1, RUN_TIMEOUT), version

        def events() -> list[Any]:
            return list(collector.store.events())

        python = sys.executable
        rendered("standalone", [python, "-m", "voila", "--no-browser", "--Voila.ip=127.0.0.1",
                                "board/dashboard.ipynb"], work, "/")
        rendered("extension", [python, "-m", "jupyter_server", "--no-browser",
                               "--ServerApp.ip=127.0.0.1", "--allow-root", "--IdentityProvider.token=",
                               f"--ServerApp.root_dir={work / 'root'}"],
                 work, "/voila/render/reports/dashboard.ipynb")
        run_like_jupyterlab(standalone, env("jupyterlab"), work)
        by_version: dict[str, list[dict[str, Any]]] = {}
        for record in collector.store.events():
            by_version.setdefault(record.app_version, []).append(record.event)
        yield Dashboards(by_version)


def unhandled(dashboards: Dashboards, version: str) -> dict[str, Any]:
    found = [event for event in dashboards.events.get(version, []) if event["unhandled"]]
    shown = {name: [frames(event) for event in events] for name, events in dashboards.events.items()}
    assert len(found) == 1, (version, shown)
    return found[0]


@pytest.mark.parametrize("version", ["standalone", "extension"])
def test_a_dashboards_error_is_named_by_its_notebook_and_cell(dashboards: Dashboards, version: str) -> None:
    event = unhandled(dashboards, version)

    assert event["exceptions"][0]["errorClass"] == "ValueError"
    assert frames(event) == FRAMES
    notebook = event["metaData"]["notebook"]
    assert (notebook["path"], notebook["cellId"]) == ("dashboard.ipynb", "check-big")


@pytest.mark.parametrize("version", ["standalone", "extension"])
def test_a_dashboards_error_is_the_same_error_as_in_jupyterlab(dashboards: Dashboards, version: str) -> None:
    dashboard, lab = unhandled(dashboards, version), unhandled(dashboards, "jupyterlab")

    assert frames(dashboard) == frames(lab)
    assert dashboard["metaData"]["notebook"]["path"] == lab["metaData"]["notebook"]["path"]


@pytest.mark.parametrize("version", ["standalone", "extension"])
def test_a_dashboard_is_a_persons_notebook_not_a_run(dashboards: Dashboards, version: str) -> None:
    assert "run" not in unhandled(dashboards, version)["metaData"]
