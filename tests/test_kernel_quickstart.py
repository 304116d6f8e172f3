"""The README's notebook quickstart, pasted as written, line by line, into a kernel of an
environment where the package is installed: its kernel config has already loaded the extension
before the first cell (as `pip install` sets up), so the quickstart must work with that."""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path
from typing import Any

from tests.conftest import StartKernel

ROOT = Path(__file__).resolve().parents[1]
INSTALLED_KERNEL_CONFIG = Path(sys.prefix, "etc", "ipython", "ipython_kernel_config.json")
# The test profile switches the installed auto-load off; this line takes that back out, so that
# the environment's own kernel config (the file pip installed) is what loads the extension.
USE_THE_INSTALLED_AUTOLOAD = "del c.InteractiveShellApp['extra_extensions']"
WAIT = 10.0


def quickstart_lines() -> list[str]:
    readme = (ROOT / "README.md").read_text()
    section = readme.split("\n## Quickstart\n", 1)[1].split("\n## ", 1)[0]
    block = re.search(r"```python\n(.*?)```", section, re.DOTALL)
    assert block is not None, "the Quickstart section has no python block"
    return [line for line in block.group(1).splitlines() if line.strip()]


def test_the_readme_quickstart_works_as_written_in_an_auto_loading_kernel(
    start_kernel: StartKernel, collector: Any
) -> None:
    assert json.loads(INSTALLED_KERNEL_CONFIG.read_text()) == {
        "InteractiveShellApp": {"extra_extensions": ["bugsnag_ipython"]}
    }
    lines = quickstart_lines()
    key = re.fullmatch(r"%env BUGSNAG_API_KEY=([0-9a-f]{32})", lines[0])
    assert key is not None, lines[0]
    # No key in the kernel's environment: the one the quickstart sets is the one that counts.
    kernel = start_kernel(load=False, kernel_config=USE_THE_INSTALLED_AUTOLOAD, BUGSNAG_API_KEY="")
    assert "bugsnag_ipython" in kernel.evaluate("sorted(get_ipython().extension_manager.loaded)")

    results = [kernel.execute(line) for line in lines]

    for line, result in zip(lines[:-1], results, strict=False):
        assert result.status == "ok" and "Error" not in result.text, (line, result)
    assert results[1].text == ""  # %reload_ext found the key: nothing to say
    assert "application/vnd.jupyter.widget-view+json" in results[2].data[0]  # the panel
    assert results[-1].error_name == "ZeroDivisionError"
    assert "bugsnag_ipython" not in results[-1].stderr  # nothing held: the key was read
    assert kernel.evaluate("__import__('bugsnag_ipython').flush(10)") is True
    assert collector.wait_for("events", 1, WAIT)
    [event] = collector.store.events()
    assert event.error_class == "ZeroDivisionError" and event.unhandled
    assert {r.header("Bugsnag-Api-Key") for r in collector.store.requests()} == {key.group(1)}
    # The launch session (held until the key came) arrived, and the error counts in it.
    [session] = collector.store.sessions()
    assert event.session_id == session.session_id


def test_the_readme_quickstart_works_pasted_into_one_cell(start_kernel: StartKernel, collector: Any) -> None:
    lines = quickstart_lines()
    kernel = start_kernel(load=False, kernel_config=USE_THE_INSTALLED_AUTOLOAD, BUGSNAG_API_KEY="")

    result = kernel.execute("\n".join(lines))

    assert result.error_name == "ZeroDivisionError" and "bugsnag_ipython" not in result.stderr
    assert "application/vnd.jupyter.widget-view+json" in result.data[0]
    assert kernel.evaluate("__import__('bugsnag_ipython').flush(10)") is True
    assert collector.wait_for("events", 1, WAIT)
    [event] = collector.store.events()
    assert event.error_class == "ZeroDivisionError"
    [session] = collector.store.sessions()
    assert event.session_id == session.session_id

