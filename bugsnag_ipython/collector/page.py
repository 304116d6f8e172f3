"""The stability report as one HTML page: what the text report shows, and a chart of stability
per app version and release stage drawn as inline SVG. No scripts, no front-end build: the
collector serves it at `/`. Every text from a payload goes through `html.escape`."""

from __future__ import annotations

from html import escape

from .report import TOP_ERRORS, Report, ReportGroup, figures

_NONE_LABEL = "(none)"
_BAR_HEIGHT = 22
_BAR_GAP = 10
_LABEL_WIDTH = 220
_PLOT_WIDTH = 480
_CHART_WIDTH = _LABEL_WIDTH + _PLOT_WIDTH + 70

_STYLE = """
body { font: 14px/1.45 system-ui, sans-serif; margin: 2em auto; max-width: 62em; color: #1d2330; }
h1 { font-size: 1.4em; margin-bottom: 0.2em; }
h2 { font-size: 1.1em; margin-top: 1.8em; }
h3 { font-size: 1em; margin: 1em 0 0.3em; }
.received { color: #5a6275; margin-top: 0; }
table { border-collapse: collapse; }
th, td { padding: 0.3em 0.8em; border-bottom: 1px solid #dde1ea; }
th { text-align: left; font-weight: 600; background: #f3f5f9; }
td.number, th.number { text-align: right; font-variant-numeric: tabular-nums; }
tr.total td { font-weight: 600; border-top: 2px solid #b8bfcf; }
ul.errors { list-style: none; margin: 0; padding-left: 0.5em; }
.errors li { margin: 0.15em 0; }
.errors .count { display: inline-block; min-width: 3em; text-align: right; margin-right: 0.8em;
                 font-variant-numeric: tabular-nums; }
svg text { font: 13px system-ui, sans-serif; fill: #1d2330; }
svg .axis { stroke: #b8bfcf; }
svg .bar { fill: #4a6cf7; }
svg .rest { fill: #e7eaf2; }
"""

_COLUMNS = (
    ("app version", False),
    ("release stage", False),
    ("sessions", True),
    ("with unhandled", True),
    ("stability", True),
    ("handled", True),
    ("unhandled", True),
    ("no session", True),
    ("unknown session", True),
)


def report_page(report: Report) -> str:
    """The whole page for `report`."""
    refused = f", {report.requests_refused} refused" if report.requests_refused else ""
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        "<title>BugSnag collector: stability report</title>",
        f"<style>{_STYLE}</style></head><body>",
        "<h1>BugSnag collector: stability report</h1>",
        f'<p class="received">{report.requests_received} requests received{refused}</p>',
    ]
    if not report.groups:
        parts.append('<p class="empty">No sessions or events received yet.</p>')
    else:
        parts += ["<h2>Stability per app version</h2>", stability_chart(report.groups)]
        parts += ["<h2>Sessions and events</h2>", _table(report)]
        if report.total.counted_sessions:
            parts.append(
                f"<p>Sessions include {report.total.counted_sessions} counted per minute without"
                " ids (sessionCounts).</p>"
            )
        parts += [
            f"<h2>Most frequent errors (top {TOP_ERRORS} per version and stage)</h2>",
            _top_errors(report.groups),
        ]
    parts.append("</body></html>")
    return "\n".join(parts) + "\n"


def stability_chart(groups: tuple[ReportGroup, ...]) -> str:
    """A horizontal bar per version and stage with sessions: its share of crash-free sessions."""
    charted = [group for group in groups if group.stability is not None]
    if not charted:
        return '<p class="no-chart">No sessions yet: stability needs sessions.</p>'
    height = len(charted) * (_BAR_HEIGHT + _BAR_GAP) + 30
    rows = []
    for index, group in enumerate(charted):
        stability = group.stability
        assert stability is not None
        y = index * (_BAR_HEIGHT + _BAR_GAP)
        width = round(stability * _PLOT_WIDTH, 1)
        label = escape(_group_label(group))
        rows.append(
            f'<g class="version" data-version="{escape(_label(group.app_version))}">'
            f'<text x="{_LABEL_WIDTH - 10}" y="{y + 16}" text-anchor="end">{label}</text>'
            f'<rect class="rest" x="{_LABEL_WIDTH}" y="{y}" width="{_PLOT_WIDTH}"'
            f' height="{_BAR_HEIGHT}"/>'
            f'<rect class="bar" x="{_LABEL_WIDTH}" y="{y}" width="{width}" height="{_BAR_HEIGHT}">'
            f"<title>{label}: {group.stability_text} of {group.sessions} sessions</title></rect>"
            f'<text x="{_LABEL_WIDTH + _PLOT_WIDTH + 8}" y="{y + 16}">{group.stability_text}</text>'
            "</g>"
        )
    axis_y = len(charted) * (_BAR_HEIGHT + _BAR_GAP)
    ticks = "".join(
        f'<text x="{_LABEL_WIDTH + share * _PLOT_WIDTH / 100}" y="{axis_y + 18}"'
        f' text-anchor="middle">{share}%</text>'
        for share in (0, 50, 100)
    )
    return (
        f'<svg class="stability-chart" role="img" width="{_CHART_WIDTH}" height="{height}"'
        f' viewBox="0 0 {_CHART_WIDTH} {height}" xmlns="http://www.w3.org/2000/svg"'
        ' aria-label="Stability (share of sessions without an unhandled error) per app version">'
        + "".join(rows)
        + f'<line class="axis" x1="{_LABEL_WIDTH}" y1="{axis_y}" x2="{_LABEL_WIDTH + _PLOT_WIDTH}"'
        f' y2="{axis_y}"/>' + ticks + "</svg>"
    )


def _table(report: Report) -> str:
    head = "".join(
        f'<th class="number">{name}</th>' if number else f"<th>{name}</th>" for name, number in _COLUMNS
    )
    rows = [
        _row(group, _label(group.app_version), _label(group.release_stage), "group")
        for group in report.groups
    ]
    rows.append(_row(report.total, "all", "", "total"))
    return f'<table class="report"><thead><tr>{head}</tr></thead><tbody>{"".join(rows)}</tbody></table>'


def _row(group: ReportGroup, version: str, stage: str, kind: str) -> str:
    cells = [escape(version), escape(stage), *figures(group)]
    tds = "".join(
        f'<td class="number">{cell}</td>' if number else f"<td>{cell}</td>"
        for cell, (_, number) in zip(cells, _COLUMNS, strict=True)
    )
    return f'<tr class="{kind}">{tds}</tr>'


def _top_errors(groups: tuple[ReportGroup, ...]) -> str:
    sections = []
    for group in groups:
        if not group.top_errors:
            continue
        items = "".join(
            f'<li><span class="count">{error.count}</span> {escape(error.error_class)}'
            + (f": {escape(error.message)}" if error.message else "")
            + "</li>"
            for error in group.top_errors
        )
        sections.append(f'<h3>{escape(_group_label(group))}</h3><ul class="errors">{items}</ul>')
    return "".join(sections)


def _group_label(group: ReportGroup) -> str:
    return f"{_label(group.app_version)} / {_label(group.release_stage)}"


def _label(value: str | None) -> str:
    return _NONE_LABEL if value is None else value
