"""The report as a web page at the collector's `/`: the text report's figures, its columns
explained, and a chart of stability per release in release order."""

from __future__ import annotations

import re
from html.parser import HTMLParser

import requests

from bugsnag_ipython.collector import Collector, build_report
from bugsnag_ipython.collector.page import report_page
from tests.payloads import build_payload, event_payload, post, session_payload


def send(collector: Collector, kind: str, payload: object) -> None:
    urls = {
        "sessions": collector.sessions_url, "events": collector.notify_url, "builds": collector.builds_url
    }
    response = post(urls[kind], kind, payload)
    assert response.status_code in (200, 202), response.text


class _Page(HTMLParser):
    """The page's table rows (cell texts), chart bars (label, width), error lines and the
    columns' explanations."""

    def __init__(self) -> None:
        super().__init__()
        self.rows: list[list[str]] = []
        self.bars: list[tuple[str, float]] = []
        self.errors: list[str] = []
        self.explained: list[str] = []
        self._cell: list[str] | None = None
        self._item: list[str] | None = None
        self._version = ""

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = dict(attrs)
        if tag == "tr":
            self.rows.append([])
        elif tag == "td":
            self._cell = []
        elif tag == "g" and found.get("class") == "version":
            self._version = found.get("data-version") or ""
        elif tag == "rect" and found.get("class") == "bar":
            self.bars.append((self._version, float(found["width"] or 0)))
        elif tag in ("li", "dt"):
            self._item = []

    def handle_endtag(self, tag: str) -> None:
        if tag == "td" and self._cell is not None:
            self.rows[-1].append("".join(self._cell))
            self._cell = None
        elif tag in ("li", "dt") and self._item is not None:
            (self.errors if tag == "li" else self.explained).append(" ".join("".join(self._item).split()))
            self._item = None

    def handle_data(self, data: str) -> None:
        for part in (self._cell, self._item):
            if part is not None:
                part.append(data)


def parse(html: str) -> _Page:
    page = _Page()
    page.feed(html)
    return page


def test_the_page_at_slash_shows_the_figures_and_a_bar_per_version(collector: Collector) -> None:
    for session_id in ("a", "b", "c", "d"):
        send(collector, "sessions", session_payload(session_id, version="1.0.0"))
    send(collector, "sessions", session_payload("e", version="2.0.0"))
    send(collector, "events", event_payload(session_id="a", version="1.0.0"))
    send(
        collector,
        "events",
        event_payload(session_id="e", version="2.0.0", error_class="KeyError", message="'x'"),
    )

    response = requests.get(collector.url + "/", timeout=5)
    assert response.status_code == 200
    assert response.headers["Content-Type"] == "text/html; charset=utf-8"
    page = parse(response.text)
    figures = [row for row in page.rows if row]
    assert figures == [
        ["1.0.0", "production", "4", "1", "75.0%", "", "0", "1", "0", "0", ""],
        ["2.0.0", "production", "1", "1", "0.0%", "-75.0 pp", "0", "1", "0", "0", ""],
        ["all", "", "5", "2", "60.0%", "", "0", "2", "0", "0", ""],
    ]
    # The bars' lengths are the stabilities, on one scale.
    (first, first_width), (second, second_width) = page.bars
    assert (first, second) == ("1.0.0", "2.0.0")
    assert second_width == 0 and first_width > 0
    assert "7 requests received" in response.text
    # New errors per release, then the most frequent over all of them.
    assert page.errors == [
        "1 ZeroDivisionError at <cell 3>:3 in <module>: division by zero",
        "1 KeyError at <cell 3>:3 in <module>: 'x'",
        "1 ZeroDivisionError at <cell 3>:3 in <module>: division by zero",
        "1 KeyError at <cell 3>:3 in <module>: 'x'",
    ]


def test_the_page_follows_what_arrives(collector: Collector) -> None:
    assert "No sessions, events or builds received yet." in requests.get(collector.url + "/", timeout=5).text
    send(collector, "sessions", session_payload("a", version="3.1"))
    page = parse(requests.get(collector.url + "/?again", timeout=5).text)
    assert page.bars == [("3.1", page.bars[0][1])] and page.bars[0][1] > 0
    assert next(row[:5] for row in page.rows if row) == ["3.1", "production", "1", "0", "100.0%"]


def test_text_from_payloads_is_shown_as_text_never_as_markup(collector: Collector) -> None:
    send(collector, "sessions", session_payload("a", version="<b>9</b>"))
    send(
        collector,
        "events",
        event_payload(
            session_id="a", version="<b>9</b>", error_class="Err<script>", message="a & <img src=x>"
        ),
    )
    html = report_page(build_report(collector.store))
    assert "<script>" not in html and "<img" not in html and "<b>9</b>" not in html
    page = parse(html)
    assert page.rows[1][0] == "<b>9</b>"  # shown as the characters it is
    assert page.errors[0] == "1 Err<script> at <cell 3>:3 in <module>: a & <img src=x>"
    assert re.search(r"<svg[^>]*>", html) is not None


def test_versions_without_sessions_get_no_bar(collector: Collector) -> None:
    send(collector, "events", event_payload(version="0.9"))
    page = parse(requests.get(collector.url + "/", timeout=5).text)
    assert page.bars == []
    assert next(row[:5] for row in page.rows if row) == ["0.9", "production", "0", "0", "n/a"]


def test_each_column_is_explained_in_one_line(collector: Collector) -> None:
    send(collector, "sessions", session_payload("a", version="1.0"))
    html = requests.get(collector.url + "/", timeout=5).text
    page = parse(html)
    assert page.explained == [
        "version", "stage", "sessions", "with unhandled", "stability", "change", "handled",
        "unhandled", "no session", "unknown session", "build",
    ]
    explanations = re.findall(r"<dd>([^<]*)</dd>", html)
    assert len(explanations) == len(page.explained) and all(explanations)
    assert "no session ran" in explanations[8] and "never received" in explanations[9]


def test_the_chart_shows_releases_in_the_order_they_appeared_and_builds_show(
    collector: Collector,
) -> None:
    # 2.0 reaches the collector before 1.9 (a hotfix of the older line comes later).
    send(collector, "builds", build_payload("2.0", revision="d" * 40, builder="alice"))
    for version, crashed in (("2.0", True), ("1.9", False)):
        send(collector, "sessions", session_payload(f"s-{version}", version=version))
        if crashed:
            send(collector, "events", event_payload(session_id=f"s-{version}", version=version))
    page = parse(requests.get(collector.url + "/", timeout=5).text)
    assert [version for version, _ in page.bars] == ["2.0", "1.9"]
    rows = [row for row in page.rows if row]
    assert [row[0] for row in rows] == ["2.0", "1.9", "all"]
    assert rows[0][-1] == "dddddddddddd by alice" and rows[1][-1] == ""
    assert rows[1][5] == "+100.0 pp"


def test_a_cut_list_on_the_page_says_how_many_more(collector: Collector) -> None:
    for index in range(8):
        send(collector, "events", event_payload(error_class=f"Error{index}"))
    page = parse(requests.get(collector.url + "/", timeout=5).text)
    assert page.errors.count("and 3 more") == 2  # the release's new errors, and the top over all
