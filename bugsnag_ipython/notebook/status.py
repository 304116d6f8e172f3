"""The short human summary behind `%bugsnag_session status` and the panel's text fallback."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from ..core.config import shown_host
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


def outside_text(client: Client) -> str | None:
    """Errors made while there was no session or it was paused, or None if there were none."""
    counts = client.tracker.counts
    if not counts.handled_outside and not counts.unhandled_outside:
        return None
    return (
        f"{counts.handled_outside} handled, {counts.unhandled_outside} unhandled "
        "(reported, counted in no session)"
    )


HOW_TO_SET_A_KEY = (
    "run %bugsnag_key to enter it (it is kept for later kernels, never shown), or set "
    "BUGSNAG_API_KEY and run %reload_ext bugsnag_ipython"
)


def held_text(held: int) -> str:
    noun = "payload" if held == 1 else "payloads"
    return (
        f"{held} {noun} kept in memory, not sent: no API key is set; {HOW_TO_SET_A_KEY} "
        "(they are lost if the kernel exits first)."
    )


def waiting_where(client: Client) -> tuple[int, str]:
    """What this kernel still has to send, each payload once, and where it is: those on disk
    are a part of the queue, not more of it."""
    queued = client.delivery.queued
    stored = min(client.delivery.stored, queued)
    if not queued:
        return 0, ""
    if stored == queued:
        return queued, "on disk"
    if not stored:
        return queued, "in memory"
    return queued, f"{queued - stored} in memory, {stored} on disk"


def delivery_line(client: Client) -> str:
    stats = client.delivery.stats
    dropped = sum(stats.dropped.values())
    waiting, where = waiting_where(client)
    parts = [
        f"{stats.delivered} delivered",
        f"{waiting} waiting" + (f" ({where})" if where else ""),
        f"{stats.retried} retried",
    ]
    reasons = ", ".join(f"{n} {reason}" for reason, n in stats.dropped.most_common())
    if client.held_overflow:
        reasons = ", ".join(filter(None, [reasons, f"{client.held_overflow} held overflow"]))
    parts.append(f"{dropped + client.held_overflow} dropped" + (f" ({reasons})" if reasons else ""))
    if client.on_error.repaired:
        parts.append(f"{client.on_error.repaired} repaired after an on_error callback broke them")
    return "Delivery: " + ", ".join(parts)


def delivery_problem(client: Client) -> str | None:
    """Why payloads are kept in memory only (the outbox refused or failed), if they are."""
    problem = getattr(client.delivery, "problem", None)
    return problem if isinstance(problem, str) else None


def persistence_problems(client: Client) -> list[str]:
    """The outbox's problem and the crash records', each once: a refused persistence directory
    is one sentence for both."""
    found = [delivery_problem(client), client.crash_records.problem]
    return list(dict.fromkeys(problem for problem in found if problem))


def records_set_aside(client: Client) -> str | None:
    """Crash records of earlier kernels this kernel set aside, and where, if it did."""
    refusals = client.crash_records
    if not refusals.set_aside:
        return None
    noun = "record" if refusals.set_aside == 1 else "records"
    return (f"{refusals.set_aside} crash {noun} of earlier kernels could not be used and "
            f"{'was' if refusals.set_aside == 1 else 'were'} set aside into {refusals.folder}")


def release_text(client: Client) -> str:
    """The app version and where it came from (`2.1 (git)`), never waiting for the look."""
    config = client.config
    if config.app_version:
        origin = client.origins.get("app_version")
        return f"{config.app_version} ({origin})" if origin else config.app_version
    if client.release_lookup.looking:
        return "(looking for the release…)"
    release = client.release_lookup.result(0)
    if release is None:
        return "(none: no repository, image or CI commit found; set app_version)"
    return f"{release.version} ({release.origin})"


def status_text(client: Client) -> str:
    config = client.config
    lines = [
        "BugSnag for this kernel",
        session_line(client),
        stability_line(client),
    ]
    outside = outside_text(client)
    if outside:
        lines.append(f"Outside a session: {outside}")
    lines.append(delivery_line(client))
    if client.held:
        lines.append(f"Held: {held_text(client.held)}")
    if client.delivery.stats.last_error:
        lines.append(f"Last error: {client.delivery.stats.last_error}")
    lines += [
        f"Endpoints: events {host_of(config.notify_url)}, sessions {host_of(config.sessions_url)}",
        f"API key: {client.masked_key()}"
        + ("" if config.api_key else " (nothing is sent until one is set)"),
        f"Release: stage {config.release_stage}, version {release_text(client)}",
        "Automatic sessions: "
        + (f"on, new after {config.background_timeout:g}s idle" if config.auto_track_sessions
           else "off"),
    ]
    if client.previous_death:
        lines.append(f"Previous kernel {client.previous_death}")
    aside = records_set_aside(client)
    if aside:
        lines.append(f"Kernel deaths: {aside}")
    problems = [*client.problems, *persistence_problems(client)]
    lines += [f"Problem: {problem}" for problem in problems if problem]
    return "\n".join(lines)
