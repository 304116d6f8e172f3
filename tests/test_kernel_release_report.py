"""The collector's release report over what real kernels sent: two releases in the order they
ran, the stability change between them, a reported build, and errors grouped by class and
location, whatever their messages."""

from __future__ import annotations

from typing import Any

import requests

from bugsnag_ipython.collector import build_report, format_report
from tests.conftest import StartKernel
from tests.payloads import API_KEY

WAIT = 10.0
HELPER = "def price_of(item):\n    return {'apple': 1}[item]"


def test_two_releases_of_a_notebook_compared(start_kernel: StartKernel, collector: Any) -> None:
    # The newer version runs first: the report keeps the order of arrival, not of version.
    newer = start_kernel(BUGSNAG_APP_VERSION="2.0")
    newer.execute(HELPER, cell_id="helper")
    assert newer.execute("price_of('pear')").error_name == "KeyError"
    assert newer.execute("price_of('plum')").error_name == "KeyError"  # another message, same place
    assert newer.flush() is True

    source = {"repository": "https://github.com/example/notebooks", "revision": "0123456789ab" + "c" * 28}
    build = {"apiKey": API_KEY, "appVersion": "1.9", "releaseStage": "production",
             "builderName": "nightly", "sourceControl": source}
    assert requests.post(collector.builds_url, json=build, timeout=5).status_code == 200
    older = start_kernel(BUGSNAG_APP_VERSION="1.9")
    older.execute("x = 1")
    assert older.flush() is True
    assert collector.wait_for("events", 2, WAIT) and collector.wait_for("sessions", 2, WAIT)

    report = build_report(collector.store)
    first, second = report.releases
    assert (first.app_version, first.sessions, first.stability_text) == ("2.0", 1, "0.0%")
    assert (second.app_version, second.sessions, second.stability_text) == ("1.9", 1, "100.0%")
    assert second.stability_change == 100.0
    assert second.build is not None and second.build.builder_name == "nightly"
    [error] = first.new_errors
    assert (error.error_class, error.count, error.where) == ("KeyError", 2, "cell-helper:2 in price_of")
    assert error.message == "'pear'"  # the first seen; 'plum' is the same error
    assert second.new_errors == ()
    text = format_report(report)
    assert "  1.9 / production: build 0123456789ab by nightly" in text.splitlines()
    assert "        2  KeyError at cell-helper:2 in price_of: 'pear'" in text.splitlines()
