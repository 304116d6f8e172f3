"""The report as a web page at the collector's `/`: the text report's figures and a stability chart."""

from __future__ import annotations

import re
from html.parser import HTMLParser

import requests

from bugsnag_ipython.collector import Collector, build_report
from bugsnag_ipython.collector.page import report_page

from .conftest import encode, event_payload, headers_for, session_payload


def send(collector: Collector, kind: str, payload: object) -> None:
    body = encode(payload)
    url = collector.sessions_url if kind == "sessions" else collector.notify_url
    response = requests.post(url, data=body, headers=headers_for(kind, body), timeout=5)
    assert response.status_code == 202, response.text


class _Page(HTMLParser):
    """The page's table rows (cell texts), chart bars (label, width) and error lines."""

    def __init__(self) -> None:
        super().__init__()
        self.rows: list[list[str]] = []
        self.bars: list[tuple[str, float]] = []
        self.errors: list[str] = []
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
        elif tag == "li":
            self._item = []

    def handle_endtag(self, tag: str) -> None:
        if tag == "td" and self._cell is not None:
            self.rows[-1].append("".join(self._cell))
            self._cell = None
        elif tag == "li" and self._item is not None:
            self.errors.append(" ".join("".join(self._item).split()))
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
        ["1.0.0", "production", "4", "1", "75.0%", "0", "1", "0", "0"],
        ["2.0.0", "production", "1", "1", "0.0%", "0", "1", "0", "0"],
        ["all", "", "5", "2", "60.0%", "0", "2", "0", "0"],
    ]
    # The bars' lengths are the stabilities, on one scale.
    (first, first_width), (second, second_width) = page.bars
    assert (first, second) == ("1.0.0", "2.0.0")
    assert second_width == 0 and first_width > 0
    assert "7 requests received" in response.text
    assert page.errors == ["1 ZeroDivisionError: division by zero", "1 KeyError: 'x'"]


def test_the_page_follows_what_arrives(collector: Collector) -> None:
    assert "No sessions or events received yet." in requests.get(collector.url + "/", timeout=5).text
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
    assert page.errors == ["1 Err<script>: a & <img src=x>"]
    assert re.search(r"<svg[^>]*>", html) is not None


def test_versions_without_sessions_get_no_bar(collector: Collector) -> None:
    send(collector, "events", event_payload(version="0.9"))
    page = parse(requests.get(collector.url + "/", timeout=5).text)
    assert page.bars == []
    assert next(row[:5] for row in page.rows if row) == ["0.9", "production", "0", "0", "n/a"]
