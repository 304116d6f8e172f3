"""The stability report as plain text for a terminal: the releases' table, then each release's
build and new errors, the most frequent errors, and a legend of the less obvious columns."""

from __future__ import annotations

import re
from collections.abc import Sequence

from .report import COLUMNS, TOP_ERRORS, ErrorGroup, Report, short_revision, table_rows

MESSAGE_WIDTH = 60  # an error's message is cut here, so that a line stays on a terminal's line
# The columns whose meaning is not in their name, explained under the table.
LEGEND = ("with unhandled", "stability", "change", "no session", "unknown session")
# Terminal controls: C0 and C1 control characters, DEL, and the bidirectional marks that
# reorder what a reader sees. Anyone who can POST to the collector chooses these texts.
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\u200e\u200f\u202a-\u202e\u2066-\u2069]")


def printable(text: str) -> str:
    """`text` with each control character shown as an escape (`\\x1b`), never written raw."""
    return _CONTROL.sub(lambda match: f"\\x{ord(match[0]):02x}" if ord(match[0]) < 0x100
                        else f"\\u{ord(match[0]):04x}", text)


def format_report(report: Report) -> str:
    """The whole report as text."""
    refused = f", {report.requests_refused} refused" if report.requests_refused else ""
    lines = ["BugSnag collector: stability report", f"{report.requests_received} requests received{refused}",
             ""]
    if not report.releases:
        return "\n".join([*lines, "No sessions, events or builds received yet.", ""])
    lines.append("Releases, in the order they first appeared")
    lines.extend(_table([[printable(cell) for cell in row] for row in table_rows(report)]))
    if report.total.counted_sessions:
        lines.append(f"Sessions include {report.total.counted_sessions} counted per minute without ids"
                     " (sessionCounts).")
    lines += ["", "Builds and new errors (errors first seen in the release)"]
    for release in report.releases:
        built = f": build {short_revision(release.build)}" if release.build is not None else ""
        lines.append(printable(f"  {release.label}{built}"))
        lines.extend(_error_lines(release.new_errors, release.more_new_errors) or ["    no new errors"])
    lines += ["", f"Most frequent errors, all releases (top {TOP_ERRORS})"]
    lines.extend(_error_lines(report.total.top_errors, report.total.more_errors))
    width = max(len(name) for name in LEGEND)
    lines += ["", "Columns", *(f"  {name:<{width}}  {COLUMNS[name]}" for name in LEGEND), ""]
    return "\n".join(lines)


def _error_lines(errors: Sequence[ErrorGroup], more: int) -> list[str]:
    """Each error as a line: count, class, location, and its first message cut to fit."""
    lines = []
    for error in errors:
        message = error.message or ""
        if len(message) > MESSAGE_WIDTH:
            message = message[: MESSAGE_WIDTH - 1] + "…"
        text = f"{error.error_class} at {error.where}" + (f": {message}" if message else "")
        lines.append(f"    {error.count:>5}  {printable(' '.join(text.split()))}")
    return lines + ([f"           and {more} more"] if more else [])


def _table(rows: list[list[str]]) -> list[str]:
    """The rows under their headings, a name of two words on two lines so that the table fits a
    terminal; version and stage aligned left, the figures right."""
    headings = [name.rpartition(" ") for name in list(COLUMNS)[:-1]]  # the build has its own lines
    rows = [[top for top, _, _ in headings], [bottom for _, _, bottom in headings], *rows]
    widths = [max(len(row[i]) for row in rows) for i in range(len(headings))]
    aligns = ["<", "<"] + [">"] * (len(headings) - 2)
    return [
        "  ".join(f"{cell:{align}{width}}" for cell, align, width in zip(row, aligns, widths, strict=True))
        .rstrip()
        for row in rows
    ]
