"""Widget callbacks failing in a real browser: a Button click in JupyterLab, and a Voilà
dashboard whose user comes back after the idle timeout. Headless Chromium driven by Playwright,
the project's collector receiving what the kernel sends.

Needs what `test_lab_panel.py` needs, and Voilà (the `browser` extra); without them the tests
are skipped, and pytest's summary says why.
"""

from __future__ import annotations

import contextlib
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.browser.chromium import ARTIFACTS, chromium_page
from tests.browser.test_lab_panel import (
    KERNEL_IDLE,
    RUN_CELL,
    jupyterlab,
    lab_environment,
    write_notebook,
)
from tests.servers import serving
from tests.waits import events_of, sessions_of

WAIT = 20.0
IDLE_TIMEOUT = 2.0  # seconds: c.BugsnagIPython.background_timeout in the kernels' profile
BUTTON_CELL = (
    "import ipywidgets as widgets\n"
    "button = widgets.Button(description='Refresh')\n"
    "def refresh(_):\n"
    "    raise RuntimeError('the refresh failed')\n"
    "button.on_click(refresh)\n"
    "button"
)
CELLS = ["%load_ext bugsnag_ipython", BUTTON_CELL]


def environment(tmp_path: Path, collector: Any) -> dict[str, str]:
    return lab_environment(tmp_path, collector, f"c.BugsnagIPython.background_timeout = {IDLE_TIMEOUT}")


@pytest.mark.timeout(150)
def test_a_failing_button_click_in_jupyterlab_is_reported(tmp_path: Path, collector: Any) -> None:
    write_notebook(tmp_path / "notebooks" / "widgets.ipynb", CELLS)
    with (
        jupyterlab(tmp_path, environment(tmp_path, collector)) as url,
        chromium_page(1200, 800, "lab-button-failure.png") as page,
    ):
        page.goto(f"{url}/lab/tree/widgets.ipynb")
        page.wait_for_function(KERNEL_IDLE, timeout=40_000)
        page.evaluate(RUN_CELL, 0)
        page.evaluate(RUN_CELL, 1)
        button = page.locator(".jp-Notebook button", has_text="Refresh")
        button.click(timeout=20_000)
        [event] = events_of(collector, 1, WAIT)
        page.screenshot(path=str(ARTIFACTS / "lab-button-click.png"))
    body = event.event
    assert event.error_class == "RuntimeError" and body["unhandled"] is True
    assert body["context"] == 'Button click "Refresh"'
    top = body["exceptions"][0]["stacktrace"][0]
    # Named by the notebook and the cell that defined the callback, as JupyterLab identifies them.
    assert (top["file"], top["method"], top["lineNumber"]) == ("widgets.ipynb#cell-cell1", "refresh", 4)
    [launch] = sessions_of(collector)
    assert event.session_id == launch


@contextlib.contextmanager
def voila(tmp_path: Path, notebook: Path, env: dict[str, str]) -> Iterator[str]:
    argv = [sys.executable, "-m", "voila", "--no-browser", "--Voila.ip=127.0.0.1", str(notebook)]
    with serving(argv, notebook.parent, env, tmp_path / "voila.log") as url:
        yield url + "/"


@pytest.mark.timeout(150)
def test_a_voila_dashboard_counts_each_return_as_a_session(tmp_path: Path, collector: Any) -> None:
    pytest.importorskip("voila", reason="voila is missing: pip install -e '.[browser]'")
    notebook = tmp_path / "dashboard" / "dashboard.ipynb"
    write_notebook(notebook, CELLS)
    with (
        voila(tmp_path, notebook, environment(tmp_path, collector)) as url,
        chromium_page(1200, 800, "voila-failure.png") as page,
    ):
        page.goto(url)
        button = page.locator("button", has_text="Refresh")
        button.click(timeout=60_000)
        button.click()  # at once: the same visit
        events_of(collector, 2, WAIT)
        time.sleep(IDLE_TIMEOUT + 0.5)  # the user is away longer than the idle timeout
        button.click()  # and comes back
        first, again, returned = events_of(collector, 3, WAIT)
        page.screenshot(path=str(ARTIFACTS / "voila-dashboard.png"))
        assert collector.wait_for("sessions", 2, WAIT)
        sessions = sessions_of(collector)
    assert [e.event["context"] for e in (first, again, returned)] == ['Button click "Refresh"'] * 3
    assert first.session_id == again.session_id != returned.session_id
    assert returned.session_id == sessions[-1] and returned.session_unhandled == 1
    assert again.session_unhandled == 2
