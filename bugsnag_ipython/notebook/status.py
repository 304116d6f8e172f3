"""The short human summary behind `%bugsnag_session status` and the panel's text fallback."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from ..config import shown_host
from ..report.payloads import iso8601

if TYPE_CHECKING:
    from ..client import Client


def host_of(url: str | None) -> str:
    """The endpoint's host as status and the panel show it: never credentials in its URL."""
    return shown_host(url)


def ago(seconds: float, *, coarse: bool = False) -> str:
    """How long ago, in words. `coarse` drops the seconds after the first minute, so that a
    live display of it changes at most once a minute."""
    seconds = max(0, int(seconds))
    if seconds < 60:
        return f"{seconds}s ago"
    if seconds < 3600:
        return f"{seconds // 60} min ago" if coarse else f"{seconds // 60}m {seconds % 60}s ago"
    hours, minutes = seconds // 3600, seconds % 3600 // 60
    return f"{hours}h {minutes}min ago" if coarse else f"{hours}h {minutes}m ago"


def session_line(client: Client) -> str:
    session = client.current_session()
    if session is None:
        return "Session: none"
    state = "paused" if session.paused else "active"
    return (
        f"Session: {state} {session.id[:8]} (started {iso8601(session.started_at)}, "
        f"{ago(time.time() - session.started_at)}), "
        f"{session.handled} handled / {session.unhandled} unhandled"
    )


def stability_line(client: Client) -> str:
    counts = client.tracker.counts
    started = counts.sessions_started
    if not started:
        return "This kernel: no sessions yet"
    stable = started - counts.sessions_with_unhandled
    noun = "session" if started == 1 else "sessions"
    return (
        f"This kernel: {started} {noun}, {counts.sessions_with_unhandled} with an unhandled "
        f"error, stability {100.0 * stable / started:.1f}%"
    )


def delivery_line(client: Client) -> str:
    stats = client.delivery.stats
    dropped = sum(stats.dropped.values())
    parts = [f"{stats.delivered} delivered", f"{client.delivery.queued} queued"]
    stored = getattr(client.delivery, "stored", None)
    if stored is not None:
        parts.append(f"{stored} stored")
    parts.append(f"{stats.retried} retried")
    reasons = ", ".join(f"{n} {reason}" for reason, n in stats.dropped.most_common())
    if client.held_overflow:
        reasons = ", ".join(filter(None, [reasons, f"{client.held_overflow} held overflow"]))
    parts.append(f"{dropped + client.held_overflow} dropped" + (f" ({reasons})" if reasons else ""))
    if client.held:
        parts.append(f"{client.held} held until an API key is set")
    if client.on_error.repaired:
        parts.append(f"{client.on_error.repaired} repaired after an on_error callback broke them")
    return "Delivery: " + ", ".join(parts)


def delivery_problem(client: Client) -> str | None:
    """Why payloads are kept in memory only (the outbox refused or failed), if they are."""
    problem = getattr(client.delivery, "problem", None)
    return problem if isinstance(problem, str) else None


def status_text(client: Client) -> str:
    config = client.config
    lines = [
        "BugSnag for this kernel",
        session_line(client),
        stability_line(client),
        delivery_line(client),
    ]
    if client.delivery.stats.last_error:
        lines.append(f"Last error: {client.delivery.stats.last_error}")
    lines += [
        f"Endpoints: events {host_of(config.notify_url)}, sessions {host_of(config.sessions_url)}",
        f"API key: {client.masked_key()}"
        + ("" if config.api_key else " (nothing is sent until one is set)"),
        f"Release: stage {config.release_stage}, version {config.app_version or '(none)'}",
        "Automatic sessions: "
        + (f"on, new after {config.background_timeout:g}s idle" if config.auto_track_sessions
           else "off"),
    ]
    problems = [*client.problems, delivery_problem(client)]
    lines += [f"Problem: {problem}" for problem in problems if problem]
    return "\n".join(lines)
