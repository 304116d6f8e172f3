"""The collector's report page in headless Chromium (driven by Playwright), as a person sees it.

Needs what tests/browser/chromium.py says. The screenshot goes to
`artifacts/browser/collector-report.png` (git-ignored).
"""

from __future__ import annotations

import pytest

from bugsnag_ipython.collector import Collector
from tests.browser.chromium import ARTIFACTS, chromium_page, expect
from tests.payloads import event_payload, post, session_payload


def send(collector: Collector, kind: str, payload: object) -> None:
    url = collector.sessions_url if kind == "sessions" else collector.notify_url
    assert post(url, kind, payload).status_code == 202


def fill(collector: Collector) -> None:
    """Three releases: 1.0.0 crashes in 1 of 4 sessions, 1.1.0 in none of 3, 2.0.0 in 1 of 2."""
    plan = {"1.0.0": (4, 1), "1.1.0": (3, 0), "2.0.0": (2, 1)}
    for version, (sessions, crashed) in plan.items():
        for number in range(sessions):
            session_id = f"{version}-{number}"
            send(collector, "sessions", session_payload(session_id, version=version))
            if number < crashed:
                send(collector, "events", event_payload(session_id=session_id, version=version))
    send(collector, "events", event_payload(unhandled=False, unhandled_count=0, version="1.1.0",
                                            error_class="ValueError", message="bad <input>"))


@pytest.mark.timeout(60)
def test_the_report_page_in_chromium(collector: Collector) -> None:
    fill(collector)
    with chromium_page(1100, 900, "collector-failure.png") as page:
        page.goto(collector.url + "/")
        expect(page.locator("h1")).to_have_text("BugSnag collector: stability report")
        bars = page.locator("svg.stability-chart rect.bar")
        expect(bars).to_have_count(3)
        # Drawn lengths: 75 %, 100 % and 50 % of the same scale.
        widths = [bars.nth(i).bounding_box()["width"] for i in range(3)]  # type: ignore[index]
        assert widths[1] == pytest.approx(widths[0] / 0.75, rel=0.01)
        assert widths[2] == pytest.approx(widths[1] / 2, rel=0.01)
        rows = page.locator("table.report tbody tr")
        expect(rows).to_have_count(4)
        expect(rows.nth(0)).to_contain_text("75.0%")
        expect(rows.nth(3)).to_contain_text("77.8%")  # 7 of 9 sessions without a crash
        expect(page.locator("ul.errors").nth(1)).to_contain_text(
            "ValueError at <cell 3>:3 in <module>: bad <input>"
        )
        page.screenshot(path=str(ARTIFACTS / "collector-report.png"), full_page=True)
