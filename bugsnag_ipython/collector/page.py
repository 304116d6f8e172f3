"""The stability report as one HTML page, served at the collector's `/`: what the text report
shows, each column explained in one line, and a chart of stability per release as inline SVG. No
scripts; every text from a payload goes through `html.escape`."""

from __future__ import annotations

from collections.abc import Sequence
from html import escape

from .report import COLUMNS, TOP_ERRORS, ErrorGroup, Release, Report, label, short_revision, table_rows

_BAR_HEIGHT = 22
_BAR_GAP = 10
_LABEL_WIDTH = 220
_PLOT_WIDTH = 480
_CHART_WIDTH = _LABEL_WIDTH + _PLOT_WIDTH + 70

_STYLE = """
body { font: 14px/1.45 system-ui, sans-serif; margin: 2em auto; max-width: 72em; color: #1d2330; }
h1 { font-size: 1.4em; margin-bottom: 0.2em; }
h2 { font-size: 1.1em; margin-top: 1.8em; }
h3 { font-size: 1em; margin: 1em 0 0.3em; }
.received, p.none { color: #5a6275; margin-top: 0; }
p.none { margin: 0 0 0 0.5em; }
table { border-collapse: collapse; }
th, td { padding: 0.3em 0.6em; border-bottom: 1px solid #dde1ea; text-align: right; white-space: nowrap; }
th { background: #f3f5f9; }
th, tr.total td, dl.columns dt { font-weight: 600; }
td:nth-child(-n+2), th:nth-child(-n+2), th:last-child, td.build { text-align: left; }
tr.total td { border-top: 2px solid #b8bfcf; }
dl.columns { display: grid; grid-template-columns: max-content auto; gap: 0.1em 1em; }
dl.columns dd { margin: 0; }
td.build { font-family: ui-monospace, monospace; font-size: 0.92em; }
ul.errors { list-style: none; margin: 0; padding-left: 0.5em; }
.errors li { margin: 0.15em 0; }
td, .errors .count { font-variant-numeric: tabular-nums; }
.errors .count { display: inline-block; min-width: 3em; text-align: right; margin-right: 0.8em; }
svg text { font: 13px system-ui, sans-serif; fill: #1d2330; }
svg .bar { fill: #4a6cf7; }
svg .rest { fill: #e7eaf2; }
"""


def report_page(report: Report) -> str:
    """The whole page for `report`."""
    refused = f", {report.requests_refused} refused" if report.requests_refused else ""
    parts = [
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">',
        f"<title>BugSnag collector: stability report</title>\n<style>{_STYLE}</style></head><body>",
        "<h1>BugSnag collector: stability report</h1>",
        f'<p class="received">{report.requests_received} requests received{refused}</p>',
    ]
    if not report.releases:
        parts.append('<p class="empty">No sessions, events or builds received yet.</p>')
    else:
        parts += ["<h2>Stability per release, in the order releases appeared</h2>",
                  stability_chart(report.releases), "<h2>Releases</h2>", _table(report)]
        if report.total.counted_sessions:
            parts.append(f"<p>Sessions include {report.total.counted_sessions} counted per minute without"
                         " ids (sessionCounts).</p>")
        parts += ['<dl class="columns">', *(f"<dt>{name}</dt><dd>{meaning}</dd>"
                                            for name, meaning in COLUMNS.items()), "</dl>"]
        parts.append("<h2>New errors per release (errors first seen in it)</h2>")
        for release in report.releases:
            listing = (_error_list(release.new_errors, release.more_new_errors) if release.new_errors
                       else '<p class="none">No new errors.</p>')
            parts.append(f"<h3>{escape(release.label)}</h3>{listing}")
        parts += [f"<h2>Most frequent errors, all releases (top {TOP_ERRORS})</h2>",
                  _error_list(report.total.top_errors, report.total.more_errors)]
    parts.append("</body></html>")
    return "\n".join(parts) + "\n"


def stability_chart(releases: Sequence[Release]) -> str:
    """A bar per release with sessions, in release order: its share of sessions without an unhandled error."""
    charted = [release for release in releases if release.stability is not None]
    if not charted:
        return '<p class="no-chart">No sessions yet: stability needs sessions.</p>'
    height = len(charted) * (_BAR_HEIGHT + _BAR_GAP)
    rows = []
    for y, release in zip(range(0, height, _BAR_HEIGHT + _BAR_GAP), charted, strict=True):
        name = escape(release.label)
        rows.append(
            f'<g class="version" data-version="{escape(label(release.app_version))}"'
            f' data-stage="{escape(label(release.release_stage))}">'
            f'<text x="{_LABEL_WIDTH - 10}" y="{y + 16}" text-anchor="end">{name}</text>'
            f'<rect class="rest" x="{_LABEL_WIDTH}" y="{y}" width="{_PLOT_WIDTH}" height="{_BAR_HEIGHT}"/>'
            f'<rect class="bar" x="{_LABEL_WIDTH}" y="{y}"'
            f' width="{round((release.stability or 0) * _PLOT_WIDTH, 1)}" height="{_BAR_HEIGHT}">'
            f"<title>{name}: {release.stability_text} of {release.sessions} sessions</title></rect>"
            f'<text x="{_LABEL_WIDTH + _PLOT_WIDTH + 8}" y="{y + 16}">{release.stability_text}</text>'
            "</g>"
        )
    return (
        f'<svg class="stability-chart" role="img" width="{_CHART_WIDTH}" height="{height}"'
        f' viewBox="0 0 {_CHART_WIDTH} {height}" xmlns="http://www.w3.org/2000/svg"'
        ' aria-label="Stability (share of sessions without an unhandled error) per release">'
        + "".join(rows) + "</svg>"
    )


def _table(report: Report) -> str:
    head = "".join(f"<th>{name}</th>" for name in COLUMNS)
    rows = []
    for release, cells in zip([*report.releases, report.total], table_rows(report), strict=True):
        build = release.build
        title = "" if build is None or not build.repository else f' title="{escape(build.repository)}"'
        tds = "".join(f"<td>{escape(cell)}</td>" for cell in cells)
        tds += f'<td class="build"{title}>{escape(short_revision(build)) if build else ""}</td>'
        rows.append(f'<tr class="{"total" if release is report.total else "release"}">{tds}</tr>')
    return f'<table class="report"><thead><tr>{head}</tr></thead><tbody>{"".join(rows)}</tbody></table>'


def _error_list(errors: Sequence[ErrorGroup], more: int) -> str:
    items = "".join(
        f'<li><span class="count">{error.count}</span> {escape(error.error_class)}'
        f' <span class="where">at {escape(error.where)}</span>'
        + (f": {escape(error.message)}" if error.message else "")
        + "</li>"
        for error in errors
    )
    if more:
        items += f'<li class="more"><span class="count"></span> and {more} more</li>'
    return f'<ul class="errors">{items}</ul>'
