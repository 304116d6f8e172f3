"""The stability report as plain text for a terminal: the releases' table, then each release's
build and new errors, the most frequent errors, and a legend of the less obvious columns."""

from __future__ import annotations

import re
from collections.abc import Sequence

from .error_groups import ErrorGroup
from .report import COLUMNS, TOP_ERRORS, Release, Report, short_revision, table_rows

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
    lines = [
        "BugSnag collector: stability report",
        f"{report.requests_received} requests received{refused}",
        "",
    ]
    if not report.releases:
        lines.append("No sessions, events or builds received yet.")
        return "\n".join(lines) + "\n"
    lines.append("Releases, in the order they first appeared")
    lines.extend(_table([[printable(cell) for cell in row] for row in table_rows(report)]))
    if report.total.counted_sessions:
        lines.append(
            f"Sessions include {report.total.counted_sessions} counted per minute without ids"
            " (sessionCounts)."
        )
    lines += ["", "Builds and new errors (errors first seen in the release)"]
    for release in report.releases:
        lines.extend(_release_lines(release))
    lines += ["", f"Most frequent errors, all releases (top {TOP_ERRORS})"]
    lines.extend(_error_lines(report.total.top_errors, report.total.more_errors, "    "))
    lines += ["", "Columns"]
    width = max(len(name) for name in LEGEND)
    lines += [f"  {name:<{width}}  {COLUMNS[name]}" for name in LEGEND]
    return "\n".join(lines) + "\n"


def _release_lines(release: Release) -> list[str]:
    build = release.build
    built = f": build {printable(short_revision(build))}" if build is not None else ""
    lines = [f"  {printable(release.label)}{built}"]
    if release.new_errors:
        lines.extend(_error_lines(release.new_errors, release.more_new_errors, "    "))
    else:
        lines.append("    no new errors")
    return lines


def _error_lines(errors: Sequence[ErrorGroup], more: int, indent: str) -> list[str]:
    lines = [f"{indent}{error.count:>5}  {error_text(error)}" for error in errors]
    if more:
        lines.append(f"{indent}       and {more} more")
    return lines


def error_text(error: ErrorGroup) -> str:
    """One error as a line: class, location, and its first message, cut to fit a terminal."""
    message = error.message or ""
    if len(message) > MESSAGE_WIDTH:
        message = message[: MESSAGE_WIDTH - 1] + "…"
    text = f"{error.error_class} at {error.where}" + (f": {message}" if message else "")
    return printable(" ".join(text.split()))


def _table(rows: list[list[str]]) -> list[str]:
    """The rows under their headings, a name of two words on two lines so that the table fits a
    terminal; version and stage aligned left, the figures right."""
    headings = [name.rpartition(" ") for name in list(COLUMNS)[:-1]]  # the build has its own lines
    rows = [[top for top, _, _ in headings], [bottom for _, _, bottom in headings], *rows]
    widths = [max(len(row[i]) for row in rows) for i in range(len(headings))]
    aligns = ["<", "<"] + [">"] * (len(headings) - 2)
    lines = []
    for row in rows:
        cells = [f"{cell:{align}{width}}" for cell, align, width in zip(row, aligns, widths, strict=True)]
        lines.append("  ".join(cells).rstrip())
    return lines
