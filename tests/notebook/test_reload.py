"""`%unload_ext` / `%load_ext` cycles in a real kernel: unloading takes away what loading
added, so that after any number of cycles the shell has one magic, one settings object and one
set of callbacks."""

from __future__ import annotations

from typing import Any

from tests.conftest import StartKernel

COUNT = "[type(c).__name__ for c in get_ipython().configurables].count({!r})"


def test_three_unload_load_cycles_leave_one_magic_one_settings_and_one_event_per_error(
    start_kernel: StartKernel, collector: Any
) -> None:
    kernel = start_kernel()
    for _ in range(3):
        assert kernel.execute("%unload_ext bugsnag_ipython").status == "ok"
        assert kernel.evaluate(COUNT.format("BugsnagMagics")) == 0
        assert kernel.evaluate(COUNT.format("BugsnagIPython")) == 0
        assert "`%bugsnag_session` not found" in kernel.execute("%bugsnag_session status").text
        assert "`%bugsnag_key` not found" in kernel.execute("%bugsnag_key").text
        assert kernel.execute("%load_ext bugsnag_ipython").status == "ok"
    assert kernel.evaluate(COUNT.format("BugsnagMagics")) == 1
    assert kernel.evaluate(COUNT.format("BugsnagIPython")) == 1
    assert kernel.execute("%config BugsnagIPython.app_version = '3.1'").status == "ok"
    listed = kernel.execute("%config BugsnagIPython")
    assert listed.status == "ok" and "3.1" in listed.text and "call" in listed.text
    assert "Session:" in kernel.execute("%bugsnag_session status").text
    kernel.execute("1/0")
    assert kernel.evaluate("__import__('bugsnag_ipython').flush(10)") is True
    [event] = collector.store.events()
    assert event.error_class == "ZeroDivisionError" and event.event["app"]["version"] == "3.1"
