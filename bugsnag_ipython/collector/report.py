"""The stability report: one row per release (app version and release stage), in the order
releases first appeared, with sessions, stability, its change, the build and the new errors.

Stability follows BugSnag's definition: the share of sessions in which no unhandled error
occurred. A session counts once it has been received on the sessions endpoint; an unhandled
event naming a session that never arrived still counts as an event, but not as a session.

Server notifiers (bugsnag-python, bugsnag-js on Node) send no session ids, only how many
sessions started each minute (`sessionCounts`); their events still name a session id of their
own. Those sessions are counted too, and in a release that has counted sessions an event
naming an id never received is one of them: each such id with an unhandled event is one
counted session with an unhandled error (never more than were counted).

A release first appears with its first session, event or build. Its stability change is
against the release before it in the same release stage that has sessions (releases of
different stages are not compared). A build is a release's when it names the same version and
stage, or the same version and no stage; the latest such build is shown. A build for a version
nothing else has named yet is a release of its own, with no sessions so far. An error is new in
the release of its first event; errors are grouped by class and location (error_groups.py).
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from typing import Any

from .error_groups import ErrorGroup, GroupKey, cut, group_errors, group_key
from .records import BuildRecord, EventRecord, PayloadRecord, SessionCountRecord, SessionRecord
from .store import Store

TOP_ERRORS = 5

ReleaseKey = tuple[str | None, str | None]  # app version, release stage


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
        if self.sessions == 0:
            return None
        return (self.sessions - self.sessions_with_unhandled) / self.sessions

    @property
    def label(self) -> str:
        """The release as shown: "1.2.0 / production"."""
        return f"{label(self.app_version)} / {label(self.release_stage)}"

    @property
    def stability_text(self) -> str:
        stability = self.stability
        return "n/a" if stability is None else f"{stability * 100:.1f}%"

    @property
    def change_text(self) -> str:
        """The change in percentage points ("+12.5 pp"), or "" for a first release."""
        change = self.stability_change
        return "" if change is None else f"{change:+.1f} pp"


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
    sessions = store.sessions()
    counts = store.session_counts()
    events = store.events()
    builds = store.builds()
    requests = store.requests()
    appeared = _first_appearances([*sessions, *counts, *events], builds)
    order = sorted(appeared, key=appeared.__getitem__)
    new_in: dict[GroupKey, ReleaseKey] = {}
    for event in events:
        new_in.setdefault(group_key(event), (event.app_version, event.release_stage))
    known_sessions = {s.session_id for s in sessions}
    releases: list[Release] = []
    last_stability: dict[str | None, float] = {}
    for key in order:
        release = _release(
            key,
            [s for s in sessions if (s.app_version, s.release_stage) == key],
            [c for c in counts if (c.app_version, c.release_stage) == key],
            [e for e in events if (e.app_version, e.release_stage) == key],
            known_sessions,
            new_in,
            _build_for(key, builds),
        )
        stability = release.stability
        if stability is not None:
            before = last_stability.get(key[1])
            if before is not None:
                release = replace(release, stability_change=round((stability - before) * 100, 1))
            last_stability[key[1]] = stability
        releases.append(release)
    statuses = Counter(request.status for request in requests)
    return Report(
        releases=tuple(releases),
        total=_total(releases, events),
        requests_received=len(requests),
        requests_refused=sum(1 for request in requests if not 200 <= request.status < 300),
        statuses=dict(sorted(statuses.items())),
    )


def _first_appearances(
    rows: Sequence[PayloadRecord], builds: Sequence[BuildRecord]
) -> dict[ReleaseKey, int]:
    """Each release and the id of the first request that named it (ids grow with arrival)."""
    appeared: dict[ReleaseKey, int] = {}
    for row in rows:
        key = (row.app_version, row.release_stage)
        appeared[key] = min(appeared.get(key, row.request_id), row.request_id)
    named = dict(appeared)
    for build in builds:
        keys: list[ReleaseKey] = [(build.app_version, build.release_stage)]
        if build.release_stage is None:
            keys = [key for key in named if key[0] == build.app_version] or keys
        for key in keys:
            appeared[key] = min(appeared.get(key, build.request_id), build.request_id)
    return appeared


def _build_for(key: ReleaseKey, builds: Sequence[BuildRecord]) -> BuildInfo | None:
    exact = [b for b in builds if (b.app_version, b.release_stage) == key]
    loose = [b for b in builds if b.app_version == key[0] and b.release_stage is None]
    if not (exact or loose):
        return None
    chosen = (exact or loose)[-1]
    return BuildInfo(chosen.revision, chosen.repository, chosen.provider, chosen.builder_name,
                     chosen.received_at)


def _release(
    key: ReleaseKey,
    sessions: Sequence[SessionRecord],
    counts: Sequence[SessionCountRecord],
    events: Sequence[EventRecord],
    known_sessions: set[str],
    new_in: Mapping[GroupKey, ReleaseKey],
    build: BuildInfo | None,
) -> Release:
    session_ids = {s.session_id for s in sessions}
    counted = sum(c.sessions_started for c in counts)
    crashed = {e.session_id for e in events if e.unhandled and e.session_id is not None}
    with_unhandled = len(session_ids & crashed)
    unknown = [e for e in events if e.session_id is not None and e.session_id not in known_sessions]
    if counted:
        # The ids a counting notifier gave its sessions: they are the counted sessions.
        with_unhandled += min(counted, len({e.session_id for e in unknown} & crashed))
        unknown = []
    errors = group_errors(events)
    top, more = cut(errors, TOP_ERRORS)
    new, more_new = cut([error for error in errors if new_in[error.key] == key], TOP_ERRORS)
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
        build=build,
    )


def _total(releases: Sequence[Release], events: Sequence[EventRecord]) -> Release:
    """Every release added up; the most frequent errors over all events."""
    top, more = cut(group_errors(events), TOP_ERRORS)
    return Release(
        app_version=None,
        release_stage=None,
        sessions=sum(r.sessions for r in releases),
        sessions_with_unhandled=sum(r.sessions_with_unhandled for r in releases),
        handled_events=sum(r.handled_events for r in releases),
        unhandled_events=sum(r.unhandled_events for r in releases),
        events_outside_sessions=sum(r.events_outside_sessions for r in releases),
        events_in_unknown_sessions=sum(r.events_in_unknown_sessions for r in releases),
        top_errors=top,
        more_errors=more,
        counted_sessions=sum(r.counted_sessions for r in releases),
    )


def figures(release: Release) -> list[str]:
    """A release's figures, in the order of the report's columns after version and stage."""
    return [
        str(release.sessions),
        str(release.sessions_with_unhandled),
        release.stability_text,
        release.change_text,
        str(release.handled_events),
        str(release.unhandled_events),
        str(release.events_outside_sessions),
        str(release.events_in_unknown_sessions),
    ]


def short_revision(build: BuildInfo) -> str:
    """A build as a few words: its revision's first 12 characters and who built it."""
    parts = []
    if build.revision:
        parts.append(build.revision[:12])
    if build.builder_name:
        parts.append(f"by {build.builder_name}")
    return " ".join(parts) or "reported"


def label(value: str | None) -> str:
    """A version or stage as shown: "(none)" when the notifier sent none."""
    return "(none)" if value is None else value


def format_report_json(report: Report) -> str:
    """The report as indented JSON, stability included as a percentage."""

    def release_dict(release: Release) -> dict[str, Any]:
        data = asdict(release)
        stability = release.stability
        data["stability_percent"] = None if stability is None else round(stability * 100, 1)
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
