"""The stability report: sessions, crash-free share and top errors per app version and stage.

Stability follows BugSnag's definition: the share of sessions in which no unhandled error
occurred. A session counts once it has been received on the sessions endpoint; an unhandled
event naming a session that never arrived still counts as an event, but not as a session.

Server notifiers (bugsnag-python, bugsnag-js on Node) send no session ids, only how many
sessions started each minute (`sessionCounts`); their events still name a session id of their
own. Those sessions are counted too, and in a version and stage that has counted sessions an
event naming an id never received is one of them: each such id with an unhandled event is one
counted session with an unhandled error (never more than were counted).
"""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from .store import EventRecord, SessionCountRecord, SessionRecord, Store

TOP_ERRORS = 5
_NONE_LABEL = "(none)"


@dataclass(frozen=True)
class ErrorCount:
    """How often one error (class and message) was reported."""

    error_class: str
    message: str | None
    count: int


@dataclass(frozen=True)
class ReportGroup:
    """The figures for one app version and release stage (None when not sent)."""

    app_version: str | None
    release_stage: str | None
    sessions: int
    sessions_with_unhandled: int
    handled_events: int
    unhandled_events: int
    events_outside_sessions: int
    events_in_unknown_sessions: int
    top_errors: tuple[ErrorCount, ...] = ()
    counted_sessions: int = 0  # of `sessions`, those counted without ids (`sessionCounts`)

    @property
    def stability(self) -> float | None:
        """The share (0 to 1) of sessions without an unhandled error; None without sessions."""
        if self.sessions == 0:
            return None
        return (self.sessions - self.sessions_with_unhandled) / self.sessions

    @property
    def stability_text(self) -> str:
        stability = self.stability
        return "n/a" if stability is None else f"{stability * 100:.1f}%"


@dataclass(frozen=True)
class Report:
    """The whole report: one group per (app version, release stage), and the totals."""

    groups: tuple[ReportGroup, ...]
    total: ReportGroup
    requests_received: int
    requests_refused: int
    statuses: dict[int, int] = field(default_factory=dict)


def build_report(store: Store) -> Report:
    """Compute the report from everything in `store`."""
    sessions = store.sessions()
    counts = store.session_counts()
    events = store.events()
    requests = store.requests()
    keys = sorted(
        {(s.app_version, s.release_stage) for s in sessions}
        | {(c.app_version, c.release_stage) for c in counts}
        | {(e.app_version, e.release_stage) for e in events},
        key=lambda key: (key[0] is not None, key[0] or "", key[1] is not None, key[1] or ""),
    )
    known_sessions = {s.session_id for s in sessions}
    groups = tuple(
        _group(
            key[0],
            key[1],
            [s for s in sessions if (s.app_version, s.release_stage) == key],
            [c for c in counts if (c.app_version, c.release_stage) == key],
            [e for e in events if (e.app_version, e.release_stage) == key],
            known_sessions,
        )
        for key in keys
    )
    statuses = Counter(request.status for request in requests)
    return Report(
        groups=groups,
        total=_total(groups, events),
        requests_received=len(requests),
        requests_refused=sum(1 for request in requests if not 200 <= request.status < 300),
        statuses=dict(sorted(statuses.items())),
    )


def _group(
    app_version: str | None,
    release_stage: str | None,
    sessions: Sequence[SessionRecord],
    counts: Sequence[SessionCountRecord],
    events: Sequence[EventRecord],
    known_sessions: set[str],
) -> ReportGroup:
    session_ids = {s.session_id for s in sessions}
    counted = sum(c.sessions_started for c in counts)
    crashed = {e.session_id for e in events if e.unhandled and e.session_id is not None}
    with_unhandled = len(session_ids & crashed)
    unknown = [e for e in events if e.session_id is not None and e.session_id not in known_sessions]
    if counted:
        # The ids a counting notifier gave its sessions: they are the counted sessions.
        with_unhandled += min(counted, len({e.session_id for e in unknown} & crashed))
        unknown = []
    return ReportGroup(
        app_version=app_version,
        release_stage=release_stage,
        sessions=len(session_ids) + counted,
        sessions_with_unhandled=with_unhandled,
        handled_events=sum(1 for e in events if not e.unhandled),
        unhandled_events=sum(1 for e in events if e.unhandled),
        events_outside_sessions=sum(1 for e in events if e.session_id is None),
        events_in_unknown_sessions=len(unknown),
        top_errors=_top_errors(events),
        counted_sessions=counted,
    )


def _total(groups: Sequence[ReportGroup], events: Sequence[EventRecord]) -> ReportGroup:
    """Every group added up; the top errors over all events."""
    return ReportGroup(
        app_version=None,
        release_stage=None,
        sessions=sum(g.sessions for g in groups),
        sessions_with_unhandled=sum(g.sessions_with_unhandled for g in groups),
        handled_events=sum(g.handled_events for g in groups),
        unhandled_events=sum(g.unhandled_events for g in groups),
        events_outside_sessions=sum(g.events_outside_sessions for g in groups),
        events_in_unknown_sessions=sum(g.events_in_unknown_sessions for g in groups),
        top_errors=_top_errors(events),
        counted_sessions=sum(g.counted_sessions for g in groups),
    )


def _top_errors(events: Sequence[EventRecord]) -> tuple[ErrorCount, ...]:
    errors = Counter((e.error_class, e.message) for e in events)
    top = sorted(errors.items(), key=lambda item: (-item[1], item[0][0], item[0][1] or ""))
    return tuple(
        ErrorCount(error_class, message, count) for (error_class, message), count in top[:TOP_ERRORS]
    )


_COLUMNS = (
    ("app version", "<"),
    ("release stage", "<"),
    ("sessions", ">"),
    ("with unhandled", ">"),
    ("stability", ">"),
    ("handled", ">"),
    ("unhandled", ">"),
    ("no session", ">"),
    ("unknown session", ">"),
)


def figures(group: ReportGroup) -> list[str]:
    """A group's figures, in the order of the report's columns after version and stage."""
    return [
        str(group.sessions),
        str(group.sessions_with_unhandled),
        group.stability_text,
        str(group.handled_events),
        str(group.unhandled_events),
        str(group.events_outside_sessions),
        str(group.events_in_unknown_sessions),
    ]


def _row(group: ReportGroup, version_label: str, stage_label: str) -> list[str]:
    return [version_label, stage_label, *figures(group)]


def _label(value: str | None) -> str:
    return _NONE_LABEL if value is None else printable(value)


# Terminal controls: C0 and C1 control characters, DEL, and the bidirectional marks that
# reorder what a reader sees. Anyone who can POST to the collector chooses these texts.
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\u200e\u200f\u202a-\u202e\u2066-\u2069]")


def printable(text: str) -> str:
    """`text` with each control character shown as an escape (`\\x1b`), never written raw."""
    return _CONTROL.sub(lambda match: f"\\x{ord(match[0]):02x}" if ord(match[0]) < 0x100
                        else f"\\u{ord(match[0]):04x}", text)


def _table(rows: Iterable[list[str]]) -> list[str]:
    rows = [[name for name, _ in _COLUMNS], *rows]
    widths = [max(len(row[i]) for row in rows) for i in range(len(_COLUMNS))]
    lines = []
    for row in rows:
        cells = [
            f"{cell:{align}{width}}"
            for cell, (_, align), width in zip(row, _COLUMNS, widths, strict=True)
        ]
        lines.append("  ".join(cells).rstrip())
    return lines


def format_report(report: Report) -> str:
    """The report as a plain-text table, followed by the most frequent errors."""
    refused = f", {report.requests_refused} refused" if report.requests_refused else ""
    lines = [
        "BugSnag collector: stability report",
        f"{report.requests_received} requests received{refused}",
        "",
    ]
    if not report.groups:
        lines.append("No sessions or events received yet.")
        return "\n".join(lines) + "\n"
    rows = [_row(g, _label(g.app_version), _label(g.release_stage)) for g in report.groups]
    rows.append(_row(report.total, "all", ""))
    lines.extend(_table(rows))
    if report.total.counted_sessions:
        lines.append(
            f"Sessions include {report.total.counted_sessions} counted per minute without ids"
            " (sessionCounts)."
        )
    lines += ["", f"Most frequent errors (top {TOP_ERRORS} per version and stage)"]
    for group in report.groups:
        if not group.top_errors:
            continue
        lines.append(f"  {_label(group.app_version)} / {_label(group.release_stage)}")
        for error in group.top_errors:
            text = printable(
                error.error_class if not error.message else f"{error.error_class}: {error.message}"
            )
            lines.append(f"    {error.count:>5}  {text}")
    return "\n".join(lines) + "\n"


def report_as_dict(report: Report) -> dict[str, Any]:
    """The report as plain JSON-ready data, stability included as a percentage."""

    def group_dict(group: ReportGroup) -> dict[str, Any]:
        data = asdict(group)
        stability = group.stability
        data["stability_percent"] = None if stability is None else round(stability * 100, 1)
        return data

    return {
        "requests_received": report.requests_received,
        "requests_refused": report.requests_refused,
        "statuses": {str(status): count for status, count in report.statuses.items()},
        "groups": [group_dict(group) for group in report.groups],
        "total": group_dict(report.total),
    }


def format_report_json(report: Report) -> str:
    """The report as indented JSON."""
    return json.dumps(report_as_dict(report), indent=2) + "\n"
