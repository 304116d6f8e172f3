"""The README's notebook quickstart, pasted as written, line by line, into a kernel of an
environment where the package is installed: its kernel config has already loaded the extension
before the first cell (as `pip install` sets up), so the quickstart must work with that."""

from __future__ import annotations

import json
import re
import stat
import sys
from pathlib import Path
from typing import Any

from tests.conftest import StartKernel
from tests.kernel import CellResult
from tests.payloads import API_KEY

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


def notebook_text(results: list[CellResult]) -> str:
    """Everything the cells showed, as a saved notebook keeps it."""
    return json.dumps([[r.stdout, r.stderr, r.traceback, r.data] for r in results], ensure_ascii=False)


def test_the_readme_quickstart_works_as_written_in_an_auto_loading_kernel(
    start_kernel: StartKernel, collector: Any, tmp_path: Path
) -> None:
    assert json.loads(INSTALLED_KERNEL_CONFIG.read_text()) == {
        "InteractiveShellApp": {"extra_extensions": ["bugsnag_ipython"]}
    }
    lines = quickstart_lines()
    assert lines[0] == "%bugsnag_key" and API_KEY not in "".join(lines)
    config_home = tmp_path / "user-config"
    # No key in the kernel's environment: the one entered at the prompt is the one that counts.
    kernel = start_kernel(load=False, kernel_config=USE_THE_INSTALLED_AUTOLOAD, BUGSNAG_API_KEY="",
                          XDG_CONFIG_HOME=str(config_home))
    assert "bugsnag_ipython" in kernel.evaluate("sorted(get_ipython().extension_manager.loaded)")

    results = [kernel.execute(line, answers=[API_KEY]) for line in lines]

    for line, result in zip(lines[:-1], results, strict=False):
        assert result.status == "ok" and "Error" not in result.text, (line, result)
    # One prompt, whose answer the frontend hides; the key never shown, only its last digits.
    assert results[0].prompts == [{"prompt": "BugSnag API key (typing is hidden): ", "password": True}]
    assert [r.prompts for r in results[1:]] == [[]] * (len(lines) - 1)
    assert f"API key …{API_KEY[-4:]} is set for this kernel" in results[0].stdout
    assert API_KEY not in notebook_text(results)
    # Kept for later kernels, readable only by this user.
    saved = config_home / "bugsnag-ipython" / "api_key"
    assert saved.read_text().strip() == API_KEY
    assert stat.S_IMODE(saved.stat().st_mode) == 0o600
    assert stat.S_IMODE(saved.parent.stat().st_mode) == 0o700
    assert "application/vnd.jupyter.widget-view+json" in results[1].data[0]  # the panel
    assert results[-1].error_name == "ZeroDivisionError"
    assert "bugsnag_ipython" not in results[-1].stderr  # nothing held: the key was set
    assert kernel.flush() is True
    assert collector.wait_for("events", 1, WAIT)
    [event] = collector.store.events()
    assert event.error_class == "ZeroDivisionError" and event.unhandled
    assert {r.header("Bugsnag-Api-Key") for r in collector.store.requests()} == {API_KEY}
    # The launch session (held until the key came) arrived, and the error counts in it.
    [session] = collector.store.sessions()
    assert event.session_id == session.session_id

    # A later kernel of this user, with no key in its environment, uses the saved one.
    later = start_kernel(BUGSNAG_API_KEY="", XDG_CONFIG_HOME=str(config_home), name="later")
    assert later.execute("%bugsnag_session status").stdout.count(f"API key: …{API_KEY[-4:]}") == 1
    assert later.execute("1/0").error_name == "ZeroDivisionError"
    assert later.flush() is True
    assert collector.wait_for("events", 2, WAIT)


def test_the_readme_quickstart_works_pasted_into_one_cell(
    start_kernel: StartKernel, collector: Any, tmp_path: Path
) -> None:
    lines = quickstart_lines()
    kernel = start_kernel(load=False, kernel_config=USE_THE_INSTALLED_AUTOLOAD, BUGSNAG_API_KEY="",
                          XDG_CONFIG_HOME=str(tmp_path / "user-config"))

    result = kernel.execute("\n".join(lines), answers=[API_KEY])

    assert result.error_name == "ZeroDivisionError" and "bugsnag_ipython" not in result.stderr
    assert API_KEY not in notebook_text([result])
    assert "application/vnd.jupyter.widget-view+json" in result.data[0]
    assert kernel.flush() is True
    assert collector.wait_for("events", 1, WAIT)
    [event] = collector.store.events()
    assert event.error_class == "ZeroDivisionError"
    [session] = collector.store.sessions()
    assert event.session_id == session.session_id


def test_an_answer_that_is_not_a_key_gets_one_sentence_and_nothing_is_kept(
    start_kernel: StartKernel, tmp_path: Path
) -> None:
    config_home = tmp_path / "user-config"
    kernel = start_kernel(BUGSNAG_API_KEY="", XDG_CONFIG_HOME=str(config_home))
    typo = API_KEY[:-1]  # one digit short: close to the key, and not to be echoed either

    result = kernel.execute("%bugsnag_key", answers=[typo])

    assert result.error_name == "ConfigurationError"
    assert result.traceback == [
        "bugsnag_ipython: That is not a BugSnag API key (32 hexadecimal digits, in Project "
        "Settings > Notifier API key), so nothing was set or saved."
    ]
    assert typo not in notebook_text([result])
    # The key typed after the magic is refused too, unechoed: the prompt is the way.
    typed = kernel.execute(f"%bugsnag_key {API_KEY}", answers=[])
    assert typed.status == "error" and typed.prompts == []
    assert typed.stderr.startswith("UsageError: %bugsnag_key takes no argument")
    assert API_KEY not in notebook_text([typed])
    assert not (config_home / "bugsnag-ipython").exists()
    assert "API key: (not set)" in kernel.execute("%bugsnag_session status").stdout


def test_a_frontend_that_cannot_prompt_gets_one_sentence(start_kernel: StartKernel) -> None:
    kernel = start_kernel(BUGSNAG_API_KEY="")

    result = kernel.execute("%bugsnag_key")  # as nbclient and papermill run cells: no stdin

    assert result.status == "ok" and result.stdout == ""
    assert result.stderr.count("\n") == 1 and "set BUGSNAG_API_KEY" in result.stderr
    assert "Traceback" not in result.stderr
