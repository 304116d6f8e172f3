"""The status panel in JupyterLab, driven in headless Chromium by Playwright.

Needs what tests/browser/chromium.py says, and JupyterLab (the `browser` extra). Screenshots go
to `artifacts/browser/` (git-ignored).
"""

from __future__ import annotations

import contextlib
import json
import re
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from bugsnag_ipython.demo import kernel_environment, make_ipython_dir
from tests.browser.chromium import ARTIFACTS, chromium_page, expect
from tests.kernel import collector_env
from tests.servers import serving

pytest.importorskip("jupyterlab", reason="jupyterlab is missing: pip install -e '.[browser]'")

CELLS = [
    "%load_ext bugsnag_ipython",
    "%bugsnag_session",
    "import bugsnag_ipython\nprint('paused:', bugsnag_ipython.current_session().paused)\n"
    "bugsnag_ipython.notify(ValueError('while paused'))",
    "1 / 0",
    "raise KeyError('during the outage')",
]


# -- JupyterLab ----------------------------------------------------------------------------------


def write_notebook(path: Path, sources: list[str]) -> None:
    """A notebook of code cells, with ids `cell0`, `cell1`..."""
    cells = [
        {"cell_type": "code", "id": f"cell{index}", "metadata": {}, "source": source,
         "outputs": [], "execution_count": None}
        for index, source in enumerate(sources)
    ]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({
        "cells": cells,
        # Without a kernelspec, Lab stops at a kernel picker.
        "metadata": {"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}},
        "nbformat": 4,
        "nbformat_minor": 5,
    }))


@contextlib.contextmanager
def jupyterlab(tmp_path: Path, env: dict[str, str]) -> Iterator[str]:
    argv = [sys.executable, "-m", "jupyterlab", "--no-browser", "--ip=127.0.0.1",
            f"--ServerApp.root_dir={tmp_path / 'notebooks'}", "--IdentityProvider.token=",
            "--LabApp.expose_app_in_browser=True", "--allow-root"]
    with serving(argv, tmp_path, env, tmp_path / "lab.log") as url:
        yield url


def lab_environment(tmp_path: Path, collector: Any, kernel_config: str = "") -> dict[str, str]:
    # A private profile without auto-load: the notebook's `%load_ext` is the path under test.
    ipython_dir = make_ipython_dir(tmp_path, kernel_config)
    # No news prompt and no update check: nothing calls out of this machine or hides the panel.
    labconfig = tmp_path / "jupyter-config" / "labconfig"
    labconfig.mkdir(parents=True)
    (labconfig / "page_config.json").write_text(json.dumps({
        "disabledExtensions": {"@jupyterlab/apputils-extension:announcements": True}
    }))
    return kernel_environment(ipython_dir, {
        **collector_env(collector, tmp_path / "outbox"),
        "JUPYTER_CONFIG_DIR": str(tmp_path / "jupyter-config"),
        "JUPYTER_RUNTIME_DIR": str(tmp_path / "jupyter-runtime"),
    })


# -- the test -----------------------------------------------------------------------------------


RUN_CELL = """async (index) => {
    const notebook = window.jupyterapp.shell.currentWidget.content;
    notebook.activeCellIndex = index;
    await window.jupyterapp.commands.execute('notebook:run-cell');
}"""
KERNEL_IDLE = """() => {
    const widget = window.jupyterapp && window.jupyterapp.shell.currentWidget;
    const kernel = widget && widget.sessionContext && widget.sessionContext.session
        && widget.sessionContext.session.kernel;
    return !!kernel && kernel.status === 'idle';
}"""


@pytest.mark.timeout(150)
def test_panel_in_jupyterlab(tmp_path: Path, collector: Any) -> None:
    """Both halves always run, against the suite's collector: the outage half needs it to go
    down and come back."""
    write_notebook(tmp_path / "notebooks" / "panel.ipynb", CELLS)
    with (
        jupyterlab(tmp_path, lab_environment(tmp_path, collector)) as url,
        chromium_page(1400, 900, "failure.png") as page,
    ):
        drive(page, f"{url}/lab/tree/panel.ipynb")
        outage_and_recovery(page, collector)


def drive(page: Any, notebook_url: str) -> None:
    page.goto(notebook_url)
    page.wait_for_function(KERNEL_IDLE, timeout=40_000)
    cells = page.locator(".jp-Notebook .jp-Cell")

    page.evaluate(RUN_CELL, 0)
    page.evaluate(RUN_CELL, 1)
    panel = page.locator(".bugsnag-panel")
    state = panel.locator(".bugsnag-state")
    expect(state).to_have_attribute("data-state", "active", timeout=20_000)
    expect(panel.locator(".bugsnag-pause")).to_be_enabled()
    expect(panel.locator(".bugsnag-resume")).to_be_disabled()
    page.screenshot(path=str(ARTIFACTS / "1-active.png"))

    # A click is a message the kernel handles once idle: wait for it, and allow a busy machine.
    page.wait_for_function(KERNEL_IDLE, timeout=20_000)
    panel.locator(".bugsnag-pause").click()
    expect(state).to_have_attribute("data-state", "paused", timeout=15_000)
    page.evaluate(RUN_CELL, 2)
    expect(cells.nth(2).locator(".jp-OutputArea-output")).to_contain_text("paused: True", timeout=10_000)
    # Reported, but in no session: shown on its own row, not in the session's counts.
    expect(panel.locator(".bugsnag-session")).to_contain_text(
        re.compile(r"Outside a session\s*1 handled, 0 unhandled"), timeout=5_000)
    page.screenshot(path=str(ARTIFACTS / "2-paused.png"))

    page.wait_for_function(KERNEL_IDLE, timeout=20_000)
    panel.locator(".bugsnag-resume").click()
    expect(state).to_have_attribute("data-state", "active", timeout=15_000)
    expect(panel.locator(".bugsnag-session")).to_contain_text("0 handled, 0 unhandled")
    page.evaluate(RUN_CELL, 3)
    expect(cells.nth(3).locator(".jp-OutputArea-output")).to_contain_text("ZeroDivisionError", timeout=10_000)
    expect(panel.locator(".bugsnag-session")).to_contain_text("0 handled, 1 unhandled", timeout=5_000)
    # The launch session and both events reached the collector.
    expect(panel.locator(".bugsnag-delivery")).to_contain_text(re.compile(r"Delivered\s*3"), timeout=10_000)
    expect(panel.locator(".bugsnag-delivery")).to_contain_text(re.compile(r"Last error\s*none"))
    page.screenshot(path=str(ARTIFACTS / "3-error-counted.png"))
    assert "Traceback" not in panel.inner_text()


def outage_and_recovery(page: Any, running: Any) -> None:
    """The endpoint goes down: the badge turns amber, the panel counts the waiting event once,
    says why and counts down to the next try, without changing size; it comes back and a Flush
    delivers it: the error line empties, nothing waits, the badge is green again."""
    cells = page.locator(".jp-Notebook .jp-Cell")
    panel = page.locator(".bugsnag-panel")
    delivery = panel.locator(".bugsnag-delivery")
    state = panel.locator(".bugsnag-state")
    size = panel.bounding_box()

    running.go_down()
    page.evaluate(RUN_CELL, 4)
    expect(cells.nth(4).locator(".jp-OutputArea-output")).to_contain_text("KeyError", timeout=10_000)
    expect(state).to_have_attribute("data-delivery", "failing", timeout=10_000)
    expect(state).to_contain_text("delivery failing")
    expect(delivery).to_contain_text(re.compile(r"Last error\s*Sending to"))
    expect(delivery).to_contain_text(
        re.compile(r"Waiting\s*1 \((on disk|in memory)\), (next try in \d+s|trying now)")
    )
    # The error's row was kept for it: the panel is the size it was.
    now = panel.bounding_box()
    assert size is not None and now is not None
    assert (now["width"], now["height"]) == pytest.approx((size["width"], size["height"]), abs=1)
    expect(panel.locator(".bugsnag-flush")).to_be_enabled()
    expect(panel.locator(".bugsnag-session")).to_contain_text("0 handled, 2 unhandled")
    page.screenshot(path=str(ARTIFACTS / "4-outage.png"))

    running.come_back()
    panel.locator(".bugsnag-flush").click()
    expect(delivery).to_contain_text(re.compile(r"Delivered\s*4"), timeout=15_000)
    expect(delivery).to_contain_text(re.compile(r"Waiting\s*0"))
    expect(delivery).to_contain_text(re.compile(r"Last error\s*none"))
    expect(state).to_have_attribute("data-delivery", "ok")
    expect(panel.locator(".bugsnag-footer")).to_contain_text("everything was delivered", timeout=10_000)
    expect(panel.locator(".bugsnag-flush")).to_be_disabled()
    page.screenshot(path=str(ARTIFACTS / "5-recovered.png"))
    assert "Traceback" not in panel.inner_text()
