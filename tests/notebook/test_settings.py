"""IPython config files and `%config` in one shell: a file's refused value is said once, at load,
and a later `%config` applies what it names and nothing else."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.payloads import API_KEY as KEY


@pytest.fixture
def loaded(shell: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    monkeypatch.setenv("BUGSNAG_PERSISTENCE_DIRECTORY", str(tmp_path))
    monkeypatch.setenv("BUGSNAG_API_KEY", KEY)
    monkeypatch.setenv("BUGSNAG_AUTO_TRACK_SESSIONS", "false")
    shell.config.BugsnagIPython.discard_classes.append("MyError")
    shell.config.BugsnagIPython.max_breadcrumbs = "many"
    shell.config.BugsnagIPython.release_stage = "beta"
    shell.run_line_magic("load_ext", "bugsnag_ipython")
    try:
        yield shell._bugsnag_ipython
    finally:
        shell.run_line_magic("unload_ext", "bugsnag_ipython")
        shell._bugsnag_ipython.client.shutdown(0.0)


def test_a_later_config_call_applies_only_what_it_names(
    loaded: Any, shell: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    client = loaded.client
    assert client.config.discard_classes[-1] == "MyError" and client.config.release_stage == "beta"
    assert [problem.split(" must ")[0] for problem in loaded.options.problems] == ["max_breadcrumbs"]
    capsys.readouterr()

    shell.run_line_magic("config", "BugsnagIPython.max_breadcrumbs = 0")
    shell.run_line_magic("config", "BugsnagIPython.background_timeout = 60")

    refused = capsys.readouterr().err.splitlines()
    assert refused == ["bugsnag_ipython: max_breadcrumbs must be a whole number, 1 or more, not 0."]
    assert client.config.max_breadcrumbs == 50 and client.config.background_timeout == 60.0
    assert client.origins["background_timeout"] == "call"
    assert client.origins["discard_classes"] == client.origins["release_stage"] == "config file"
    assert "max_breadcrumbs" not in client.origins
