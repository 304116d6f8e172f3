"""The stability report, as text and JSON: a row per release (app version and release stage) in the
order releases appeared, with sessions, stability, its change in the stage, the build and new errors.
Errors are grouped as BugSnag groups them: by error class and top in-project frame, never by message."""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, replace
from typing import Any

from .store import BuildRecord, EventRecord, SessionCountRecord, SessionRecord, Store

TOP_ERRORS = 5
COLUMNS = {
    "version": "the app version the notifier sent ((none): it sent none)",
    "stage": "the release stage it sent",
    "sessions": "sessions started in this release",
    "with unhandled": "sessions in which an unhandled error occurred",
    "stability": "the share of sessions without an unhandled error",
    "change": "stability's change from the previous release in this stage, in percentage points",
    "handled": "handled events (errors reported and caught)",
    "unhandled": "unhandled events (errors that reached the top of a cell, kernel deaths)",
    "no session": "events reported while no session ran (none started, or paused); in no stability",
    "unknown session": "events naming a session the collector never received (lost or refused)",
    "build": "the revision and builder the Build API reported for this release",
}

ReleaseKey = tuple[str | None, str | None]  # app version, release stage


@dataclass(frozen=True)
class Location:
    """Where an error happened: the frame's file, method and line (None when not sent)."""

    file: str
    method: str
    line: int | None


GroupKey = tuple[str, Location | None]  # error class, location


@dataclass(frozen=True)
class ErrorGroup:
    """One error: its class and location, the first message seen, and how many events."""

    error_class: str
    location: Location | None
    message: str | None
    count: int

    @property
    def where(self) -> str:
        """The location as one line: `file:line in method`, or "no stack frame"."""
        if self.location is None:
            return "no stack frame"
        line = "" if self.location.line is None else f":{self.location.line}"
        return f"{self.location.file}{line} in {self.location.method}"


@dataclass(frozen=True)
class BuildInfo:
    """What the Build API said about a release: who built it, from which commit."""

    revision: str | None
    repository: str | None
    provider: str | None
    builder_name: str | None
    received_at: str


@dataclass(frozen=True)
class Release:
    """The figures for one app version and release stage (None when not sent)."""

    app_version: str | None
    release_stage: str | None
    sessions: int
    sessions_with_unhandled: int
    handled_events: int
    unhandled_events: int
    events_outside_sessions: int
    events_in_unknown_sessions: int
    top_errors: tuple[ErrorGroup, ...] = ()  # the most frequent here, TOP_ERRORS at most
    more_errors: int = 0  # ... and how many other errors there were
    new_errors: tuple[ErrorGroup, ...] = ()  # first seen in this release, most frequent first
    more_new_errors: int = 0
    counted_sessions: int = 0  # of `sessions`, those counted without ids (`sessionCounts`)
    stability_change: float | None = None  # percentage points since the release before
    build: BuildInfo | None = None

    @property
    def stability(self) -> float | None:
        """The share (0 to 1) of sessions without an unhandled error; None without sessions."""
        return None if self.sessions == 0 else (self.sessions - self.sessions_with_unhandled) / self.sessions

    @property
    def label(self) -> str:
        """The release as shown: "1.2.0 / production"."""
        return f"{label(self.app_version)} / {label(self.release_stage)}"

    @property
    def stability_text(self) -> str:
        return "n/a" if self.stability is None else f"{self.stability * 100:.1f}%"

    @property
    def change_text(self) -> str:
        """The change in percentage points ("+12.5 pp"), or "" for a first release."""
        return "" if self.stability_change is None else f"{self.stability_change:+.1f} pp"


@dataclass(frozen=True)
class Report:
    """The whole report: one release per (app version, release stage), and the totals."""

    releases: tuple[Release, ...]
    total: Release
    requests_received: int
    requests_refused: int
    statuses: dict[int, int] = field(default_factory=dict)


def build_report(store: Store) -> Report:
    """Compute the report from everything in `store`."""
    sessions, counts, events = store.sessions(), store.session_counts(), store.events()
    builds, requests = store.builds(), store.requests()
    # Each release and the id of the first request that named it (ids grow with arrival); a
    # build without a stage names every stage of its version, or a release of its own.
    appeared: dict[ReleaseKey, int] = {}
    for row in sorted([*sessions, *counts, *events], key=lambda row: row.request_id):
        appeared.setdefault((row.app_version, row.release_stage), row.request_id)
    named = list(appeared)
    for build in builds:
        keys = [key for key in named if build.release_stage is None and key[0] == build.app_version]
        for key in keys or [(build.app_version, build.release_stage)]:
            appeared[key] = min(appeared.get(key, build.request_id), build.request_id)
    new_in: dict[GroupKey, ReleaseKey] = {}
    for event in events:
        new_in.setdefault(_group_key(event), (event.app_version, event.release_stage))
    releases: list[Release] = []
    last_stability: dict[str | None, float] = {}
    for key in sorted(appeared, key=appeared.__getitem__):
        new_here = {group for group, first in new_in.items() if first == key}
        release = _release(key, sessions, counts, events, builds, new_here)
        stability = release.stability
        if stability is not None:
            before = last_stability.get(key[1])
            if before is not None:
                release = replace(release, stability_change=round((stability - before) * 100, 1))
            last_stability[key[1]] = stability
        releases.append(release)
    top, more = _cut(_group_errors(events))
    totals = {name: sum(getattr(release, name) for release in releases) for name in _SUMMED}
    return Report(
        releases=tuple(releases),
        total=Release(app_version=None, release_stage=None, top_errors=top, more_errors=more, **totals),
        requests_received=len(requests),
        requests_refused=sum(1 for request in requests if not 200 <= request.status < 300),
        statuses=dict(sorted(Counter(request.status for request in requests).items())),
    )


_SUMMED = ("sessions", "sessions_with_unhandled", "handled_events", "unhandled_events",
           "events_outside_sessions", "events_in_unknown_sessions", "counted_sessions")


def _release(
    key: ReleaseKey, all_sessions: Sequence[SessionRecord], counts: Sequence[SessionCountRecord],
    all_events: Sequence[EventRecord], builds: Sequence[BuildRecord], new_here: set[GroupKey],
) -> Release:
    """One release's figures, errors and build (the latest for its version and stage, else its version)."""
    session_ids = {s.session_id for s in all_sessions if (s.app_version, s.release_stage) == key}
    counted = sum(c.sessions_started for c in counts if (c.app_version, c.release_stage) == key)
    events = [e for e in all_events if (e.app_version, e.release_stage) == key]
    exact = [b for b in builds if (b.app_version, b.release_stage) == key]
    loose = [b for b in builds if b.app_version == key[0] and b.release_stage is None]
    build = (exact or loose)[-1] if exact or loose else None
    known_sessions = {s.session_id for s in all_sessions}
    crashed = {e.session_id for e in events if e.unhandled and e.session_id is not None}
    with_unhandled = len(session_ids & crashed)
    unknown = [e for e in events if e.session_id is not None and e.session_id not in known_sessions]
    if counted:
        # Server notifiers count sessions per minute without ids, while their events name ids of
        # their own: each such id with an unhandled event is a counted session that crashed.
        with_unhandled += min(counted, len({e.session_id for e in unknown} & crashed))
        unknown = []
    errors = _group_errors(events)
    top, more = _cut(errors)
    new, more_new = _cut([error for error in errors if (error.error_class, error.location) in new_here])
    return Release(
        app_version=key[0],
        release_stage=key[1],
        sessions=len(session_ids) + counted,
        sessions_with_unhandled=with_unhandled,
        handled_events=sum(1 for e in events if not e.unhandled),
        unhandled_events=sum(1 for e in events if e.unhandled),
        events_outside_sessions=sum(1 for e in events if e.session_id is None),
        events_in_unknown_sessions=len(unknown),
        top_errors=top,
        more_errors=more,
        new_errors=new,
        more_new_errors=more_new,
        counted_sessions=counted,
        build=None if build is None else BuildInfo(build.revision, build.repository, build.provider,
                                                   build.builder_name, build.received_at),
    )


def _group_key(event: EventRecord) -> GroupKey:
    """The error class and the first frame marked `inProject` (else the first frame)."""
    # Stored events passed validation: their first exception has a stacktrace list.
    frames = [frame for frame in event.event["exceptions"][0]["stacktrace"] if isinstance(frame, dict)]
    if not frames:
        return event.error_class, None
    frame = next((frame for frame in frames if frame.get("inProject") is True), frames[0])
    line = frame.get("lineNumber")
    return event.error_class, Location(
        str(frame.get("file") or "?"),
        str(frame.get("method") or "?"),
        line if isinstance(line, int) and not isinstance(line, bool) else None,
    )


def _group_errors(events: Sequence[EventRecord]) -> list[ErrorGroup]:
    """The errors among `events`, most frequent first (ties: the one seen first)."""
    found: dict[GroupKey, list[EventRecord]] = {}
    for event in events:
        found.setdefault(_group_key(event), []).append(event)
    groups = [ErrorGroup(*key, members[0].message, len(members)) for key, members in found.items()]
    return sorted(groups, key=lambda group: -group.count)  # stable: ties stay in the order seen


def _cut(groups: Sequence[ErrorGroup]) -> tuple[tuple[ErrorGroup, ...], int]:
    return tuple(groups[:TOP_ERRORS]), max(0, len(groups) - TOP_ERRORS)


def table_rows(report: Report) -> list[list[str]]:
    """The table's cells as texts: a row per release and one for all, a cell per column but the build."""
    rows = [(label(release.app_version), label(release.release_stage), release)
            for release in report.releases]
    return [
        [version, stage, str(release.sessions), str(release.sessions_with_unhandled), release.stability_text,
         release.change_text, str(release.handled_events), str(release.unhandled_events),
         str(release.events_outside_sessions), str(release.events_in_unknown_sessions)]
        for version, stage, release in [*rows, ("all", "", report.total)]
    ]


def short_revision(build: BuildInfo) -> str:
    """A build as a few words: its revision's first 12 characters and who built it."""
    by = f"by {build.builder_name}" if build.builder_name else ""
    return " ".join(filter(None, [(build.revision or "")[:12], by])) or "reported"


def label(value: str | None) -> str:
    """A version or stage as shown: "(none)" when the notifier sent none."""
    return "(none)" if value is None else value


def format_report_json(report: Report) -> str:
    """The report as indented JSON, stability included as a percentage."""

    def release_dict(release: Release) -> dict[str, Any]:
        data = asdict(release)
        data["stability_percent"] = None if release.stability is None else round(release.stability * 100, 1)
        data["stability_change_points"] = data.pop("stability_change")
        return data

    data = {
        "requests_received": report.requests_received,
        "requests_refused": report.requests_refused,
        "statuses": {str(status): count for status, count in report.statuses.items()},
        "releases": [release_dict(release) for release in report.releases],
        "total": release_dict(report.total),
    }
    return json.dumps(data, indent=2) + "\n"


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
    """The rows under their headings (two words on two lines, to fit a terminal), figures right-aligned."""
    headings = [name.rpartition(" ") for name in list(COLUMNS)[:-1]]  # the build has its own lines
    rows = [[top for top, _, _ in headings], [bottom for _, _, bottom in headings], *rows]
    widths = [max(len(row[i]) for row in rows) for i in range(len(headings))]
    aligns = ["<", "<"] + [">"] * (len(headings) - 2)
    return [
        "  ".join(f"{cell:{align}{width}}" for cell, align, width in zip(row, aligns, widths, strict=True))
        .rstrip()
        for row in rows
    ]
