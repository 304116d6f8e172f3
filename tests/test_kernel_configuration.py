"""Configuration as a notebook user meets it, in a real kernel: `%config` refusals and listing,
`%bugsnag_session --help`, `%reload_ext` reading the environment again, and errors held for
lack of an API key said where the user looks."""

from __future__ import annotations

from typing import Any

from tests.conftest import StartKernel
from tests.payloads import API_KEY, OTHER_KEY

WAIT = 10.0


def option_lines(text: str) -> dict[str, tuple[str, str]]:
    """`%config BugsnagIPython` as {option: (value, origin)}."""
    shown = {}
    for line in text.splitlines()[1:]:
        words = line.split()
        if line.startswith("  ") and len(words) >= 3:
            origin = " ".join(words[-2:]) if words[-2:] == ["config", "file"] else words[-1]
            value = line.strip()[len(words[0]):].strip().removesuffix(origin).strip()
            shown[words[0]] = (value, origin)
    return shown


def test_config_refusal_is_one_sentence_of_ours_and_changes_nothing(
    start_kernel: StartKernel,
) -> None:
    kernel = start_kernel()
    refused = kernel.execute("%config BugsnagIPython.release_stage = 5")
    assert refused.status == "ok" and refused.stdout == ""
    assert refused.stderr == (
        "bugsnag_ipython: release_stage must be a non-empty string, e.g. 'production'.\n"
    )
    assert "ERROR:root" not in refused.text and "trait" not in refused.text
    status = kernel.execute("%bugsnag_session status").stdout
    assert "stage production" in status
    listed = option_lines(kernel.execute("%config BugsnagIPython").stdout)
    assert listed["release_stage"] == ("production", "default")


def test_config_lists_each_effective_value_and_where_it_came_from(
    start_kernel: StartKernel, collector: Any
) -> None:
    kernel = start_kernel(
        load=False,
        kernel_config="c.BugsnagIPython.app_version = '1.0.0'\nc.BugsnagIPython.max_breadcrumbs = 20",
        BUGSNAG_RELEASE_STAGE="staging",
        BUGSNAG_MAX_BREADCRUMBS="30",
        BUGSNAG_SESSIONS_ENDPOINT=collector.sessions_url.replace("http://", "http://ada:hunter2@"),
    )
    assert kernel.execute("%load_ext bugsnag_ipython").status == "ok"
    kernel.execute("import bugsnag_ipython; bugsnag_ipython.configure(send_code=False)")
    kernel.execute("%config BugsnagIPython.background_timeout = 60")

    shown = kernel.execute("%config BugsnagIPython").stdout
    listed = option_lines(shown)

    assert API_KEY not in shown and "hunter2" not in shown
    assert listed["sessions_endpoint"][0].startswith("http://***@127.0.0.1:")
    assert listed["api_key"] == ("…" + API_KEY[-4:], "environment")
    assert listed["app_version"] == ("1.0.0", "config file")
    assert listed["release_stage"] == ("staging", "environment")
    assert listed["max_breadcrumbs"] == ("30", "environment")  # the environment over the file
    assert listed["send_code"] == ("False", "call")
    assert listed["background_timeout"] == ("60", "call")
    assert listed["auto_track_sessions"] == ("True", "default")
    assert listed["discard_classes"] == ("KeyboardInterrupt, SystemExit, UsageError", "default")
    assert set(listed) >= {"notify_endpoint", "sessions_endpoint", "max_stored_events"}

    # Variables removed from the environment give their options back to the file or default.
    kernel.execute("import os\nfor name in ('BUGSNAG_RELEASE_STAGE', 'BUGSNAG_MAX_BREADCRUMBS'):\n"
                   "    del os.environ[name]")
    assert kernel.execute("%reload_ext bugsnag_ipython").status == "ok"
    listed = option_lines(kernel.execute("%config BugsnagIPython").stdout)
    assert listed["release_stage"] == ("production", "default")
    assert listed["max_breadcrumbs"] == ("20", "config file")
    assert listed["send_code"] == ("False", "call")  # untouched by the environment: kept


def test_session_magic_help_lists_each_subcommand_in_one_line(start_kernel: StartKernel) -> None:
    kernel = start_kernel()
    for spelling in ("--help", "-h"):
        shown = kernel.execute(f"%bugsnag_session {spelling}")
        assert shown.status == "ok" and shown.stderr == ""
        lines = shown.stdout.splitlines()
        assert lines[0].startswith("usage: %bugsnag_session")
        for subcommand in ("start", "pause", "resume", "status", "flush [SECONDS]"):
            [line] = [line for line in lines if line.strip().startswith(subcommand + " ")]
            assert len(line.split(subcommand, 1)[1].strip()) > 10  # says what it does


def test_reload_reads_the_environment_again_and_sends_what_was_held(
    start_kernel: StartKernel, collector: Any
) -> None:
    kernel = start_kernel(BUGSNAG_API_KEY="")
    first = kernel.execute("1/0")
    # The first held error says so in its own cell, once.
    assert first.stderr.count("no BugSnag API key is set") == 1
    assert "%reload_ext bugsnag_ipython" in first.stderr
    assert "no BugSnag API key" not in kernel.execute("1/0").stderr
    status = kernel.execute("%bugsnag_session status").stdout
    assert "Held: 3 payloads kept in memory, not sent: no API key is set" in status
    session = kernel.evaluate("__import__('bugsnag_ipython').current_session().id")

    kernel.execute(f"%env BUGSNAG_API_KEY={OTHER_KEY}")
    kernel.execute("%env BUGSNAG_APP_VERSION=3.1.4")
    reloaded = kernel.execute("%reload_ext bugsnag_ipython")
    assert reloaded.status == "ok" and "no bugsnag api key" not in reloaded.text.lower()

    assert kernel.flush() is True
    assert kernel.evaluate("__import__('bugsnag_ipython').current_session().id") == session
    assert collector.wait_for("events", 2, WAIT) and collector.wait_for("sessions", 1, WAIT)
    requests = collector.store.requests()
    assert {r.header("Bugsnag-Api-Key") for r in requests} == {OTHER_KEY}
    kernel.execute("1/0")
    assert collector.wait_for("events", 3, WAIT)
    assert collector.store.events()[-1].app_version == "3.1.4"
    listed = option_lines(kernel.execute("%config BugsnagIPython").stdout)
    assert listed["app_version"] == ("3.1.4", "environment")
