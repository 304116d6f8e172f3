"""Every word the extension shows about its state, as plain data: `status_text` is
`%bugsnag_session status`, `panel_view` the live panel's rows and buttons, from the same pieces."""

from __future__ import annotations

import html
import math
import re
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Literal

from ..core.config import mask_api_key, shown_host
from ..delivery.payload import refusal
from .settings import HOW_TO_SET_A_KEY

if TYPE_CHECKING:
    from ..client import Client

SessionState = Literal["active", "paused", "none", "unloaded"]
# "failing": payloads wait on an endpoint that fails and will be tried again; "stopped":
# nothing gets through until the user acts (no API key, the key rejected, no such endpoint).
DeliveryState = Literal["ok", "failing", "stopped"]
Rows = tuple[tuple[str, str], ...]

NOT_LOADED = "The extension is not loaded in this kernel; run %load_ext bugsnag_ipython."
# The refusals that drop every payload, not one, by delivery's sentence for each, with the badge's words.
_STOPPING_REFUSALS = {
    refusal(401)[1]: "API key rejected",
    refusal(403)[1]: "API key rejected",
    refusal(404)[1]: "endpoint not found",
}
# Delivery's sentence for a failed try names the wait it chose then; the panel counts it down.
_CHOSEN_WAIT = re.compile(r"; kept, next try in [^;]*s\.$")


def ago(seconds: float, *, coarse: bool = False) -> str:
    """How long ago, in words; `coarse` drops the seconds after the first minute."""
    seconds = max(0, int(seconds))
    if seconds < 60:
        return f"{seconds}s ago"
    if seconds < 3600:
        return f"{seconds // 60} min ago" if coarse else f"{seconds // 60}m {seconds % 60}s ago"
    hours, minutes = seconds // 3600, seconds % 3600 // 60
    return f"{hours}h {minutes}min ago" if coarse else f"{hours}h {minutes}m ago"


def _plural(count: int, noun: str) -> str:
    return f"{count} {noun}" + ("" if count == 1 else "s")


def _stability(client: Client) -> tuple[int, int, str]:
    counts = client.tracker.counts
    started = counts.sessions_started
    stable = started - counts.sessions_with_unhandled
    return started, stable, f"{100.0 * stable / started:.1f}%" if started else ""


def _outside(client: Client) -> str | None:
    counts = client.tracker.counts
    if not counts.handled_outside and not counts.unhandled_outside:
        return None
    return (f"{counts.handled_outside} handled, {counts.unhandled_outside} unhandled "
            "(reported, counted in no session)")


def _waiting(client: Client) -> tuple[int, str]:
    """What this kernel still has to send, and where: those on disk are a part of the queue."""
    queued = client.delivery.queued
    stored = min(client.delivery.stored, queued)
    if not queued:
        return 0, ""
    if stored == queued or not stored:
        return queued, " (on disk)" if stored else " (in memory)"
    return queued, f" ({queued - stored} in memory, {stored} on disk)"


def _dropped(client: Client) -> tuple[int, str]:
    stats = client.delivery.stats
    reasons = [f"{n} {reason}" for reason, n in stats.dropped.most_common()]
    overflow = client.dispatcher.held_overflow
    if overflow:
        reasons.append(f"{overflow} held overflow")
    return sum(stats.dropped.values()) + overflow, f" ({', '.join(reasons)})" if reasons else ""


def _records_set_aside(client: Client) -> str | None:
    aside = client.crash_records
    if not aside.set_aside:
        return None
    were = "was" if aside.set_aside == 1 else "were"
    return (f"{_plural(aside.set_aside, 'crash record')} of earlier kernels could not be used and "
            f"{were} set aside into {aside.folder}")


def _persistence_problems(client: Client) -> list[str]:
    """The outbox's and the crash records' problems: a refused directory is one sentence for both."""
    found = (client.delivery.problem, client.crash_records.problem)
    return list(dict.fromkeys(problem for problem in found if problem))


def _release_text(client: Client) -> str:
    # The app version and where it came from (`2.1 (git)`), never waiting for the look.
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


def _settings(client: Client) -> Rows:
    config = client.config
    return (
        ("Endpoints", f"events {shown_host(config.notify_url)}, sessions {shown_host(config.sessions_url)}"),
        ("API key", mask_api_key(config.api_key)
         + ("" if config.api_key else " (nothing is sent until one is set)")),
        ("Release", f"stage {config.release_stage}, version {_release_text(client)}"),
    )


def status_text(client: Client | None) -> str:
    """`%bugsnag_session status`: one line a topic."""
    if client is None:
        return f"BugSnag: {NOT_LOADED}"
    config, stats, held = client.config, client.delivery.stats, client.dispatcher.held
    session = client.current_session()
    if session is None:
        session_line = "none"
    else:
        started_at = datetime.fromtimestamp(session.started_at, UTC).isoformat(timespec="milliseconds")
        session_line = (f"{'paused' if session.paused else 'active'} {session.id[:8]} (started "
                        f"{started_at.replace('+00:00', 'Z')}, {ago(time.time() - session.started_at)}), "
                        f"{session.handled} handled / {session.unhandled} unhandled")
    started, stable, share = _stability(client)
    (waiting, where), (dropped, why) = _waiting(client), _dropped(client)
    delivery = [f"{stats.delivered} delivered", f"{waiting} waiting{where}", f"{stats.retried} retried",
                f"{dropped} dropped{why}"]
    if client.on_error.repaired:
        delivery.append(f"{client.on_error.repaired} repaired after an on_error callback broke them")
    automatic = f"on, new after {config.background_timeout:g}s idle" if config.auto_track_sessions else "off"
    rows = [
        ("Session", session_line),
        ("This kernel", f"{_plural(started, 'session')}, {started - stable} with an unhandled error, "
                        f"stability {share}" if started else "no sessions yet"),
        ("Outside a session", _outside(client)),
        ("Delivery", ", ".join(delivery)),
        ("Held", f"{_plural(held, 'payload')} kept in memory, not sent: no API key is set; "
                 f"{HOW_TO_SET_A_KEY} (they are lost if the kernel exits first)." if held else None),
        ("Last error", stats.last_error),
        *_settings(client),
        ("Automatic sessions", automatic),
        ("Previous kernel", client.previous_death),
        ("Kernel deaths", _records_set_aside(client)),
        *(("Problem", problem) for problem in [*client.problems, *_persistence_problems(client)]),
    ]
    # The previous kernel's line is a sentence: "Previous kernel died running In [3] (killed); reported."
    lines = [f"{label} {value}" if label == "Previous kernel" else f"{label}: {value}"
             for label, value in _shown(rows)]
    return "\n".join(["BugSnag for this kernel", *lines])


def status_html(client: Client | None) -> str:
    """The status text as a small table, for frontends that render HTML but not widgets."""
    title, *lines = status_text(client).splitlines()
    cells = "".join(
        f"<tr><th style='text-align:left;padding-right:1em'>{html.escape(label)}</th>"
        f"<td style='text-align:left'>{html.escape(value)}</td></tr>"
        for label, _, value in (line.partition(": ") for line in lines)
    )
    return f"<div class='bugsnag-status'><b>{html.escape(title)}</b><table>{cells}</table></div>"


def session_change(client: Client, action: str) -> str:
    """Start, pause or resume the session, and the sentence that says what happened."""
    if action == "start":
        return f"Started session {client.tracker.start_session().id[:8]}."
    if action == "pause":
        if client.current_session() is None:
            return "There is no session to pause."
        client.pause_session()
        return "Session paused: errors now count against no session."
    resumed = client.resume_session()
    current = client.current_session()
    short = current.id[:8] if current else "?"
    return f"Resumed session {short}." if resumed else f"Session {short} is active."


def flush_outcome(client: Client, delivered_all: bool) -> str:
    """What `%bugsnag_session flush` says after it."""
    if delivered_all:
        return "Everything was delivered."
    parts = [f"{client.delivery.queued} still being sent"] if client.delivery.queued else []
    if client.dispatcher.held:
        parts.append(f"{client.dispatcher.held} held until an API key is set")
    return "Not everything was delivered yet: " + (", ".join(parts) or "see status") + "."


@dataclass
class FlushProgress:
    """A flush started from the panel, shared by every panel of the same client."""

    started: float  # time.monotonic() when the click came
    running: bool = True
    delivered_all: bool = False
    seconds: float = 0.0
    failure: str | None = None


@dataclass(frozen=True)
class PanelView:
    """What one refresh of the live panel shows."""

    state: SessionState
    delivery_state: DeliveryState
    title: str
    session: Rows
    delivery: Rows
    settings: Rows
    flush: str
    can_start: bool
    can_pause: bool
    can_resume: bool
    can_flush: bool
    countdown: float | None = None  # seconds to the next try shown, for a timely refresh


def panel_view(client: Client | None, flush: FlushProgress | None, *, wall_clock: float,
               monotonic: float) -> PanelView:
    """The live panel's rows and button states for `client` (None: the extension is unloaded)."""
    if client is None:
        return PanelView("unloaded", "ok", "not loaded", (("Session", NOT_LOADED),), (), (), "",
                         can_start=False, can_pause=False, can_resume=False, can_flush=False)
    session = client.current_session()
    state: SessionState = "none" if session is None else "paused" if session.paused else "active"
    waiting = client.delivery.queued
    health, trouble = _delivery_state(client)
    countdown = client.delivery.retry_in() if health == "failing" else None
    title = state if session is None else f"{state} · {session.id[:8]}"
    return PanelView(
        state=state,
        delivery_state=health,
        title=f"{title} · {trouble}" if trouble else title,
        session=_session_rows(client, wall_clock),
        delivery=_delivery_rows(client, countdown),
        # What status lists as problems besides delivery's (a refused option, no crash record).
        settings=_settings(client) + tuple(("Problem", problem) for problem in client.problems),
        flush=_flush_text(flush, waiting, monotonic),
        can_start=True,
        can_pause=state == "active",
        can_resume=state == "paused",
        can_flush=waiting > 0 and not (flush is not None and flush.running),
        countdown=countdown,
    )


def _delivery_state(client: Client) -> tuple[DeliveryState, str]:
    if not client.config.api_key:
        return "stopped", "not sending: no API key"
    last_error = client.delivery.stats.last_error
    if last_error in _STOPPING_REFUSALS:
        return "stopped", f"not sending: {_STOPPING_REFUSALS[last_error]}"
    if last_error and client.delivery.queued:
        return "failing", "delivery failing"
    return "ok", ""


def countdown_text(seconds: float) -> str:
    """A wait as the panel counts it down: whole seconds, rounded up, so "in 0s" never shows."""
    whole = math.ceil(seconds)
    if whole <= 0:
        return "trying now"
    if whole < 60:
        return f"next try in {whole}s"
    return f"next try in {whole // 60} min {whole % 60:02d}s"


def _session_rows(client: Client, wall_clock: float) -> Rows:
    session = client.current_session()
    started, stable, share = _stability(client)
    rows = [("Session", "none; New session starts one")] if session is None else [
        ("Started", f"{time.strftime('%H:%M:%S UTC', time.gmtime(session.started_at))} "
                    f"({ago(wall_clock - session.started_at, coarse=True)})"),
        ("Errors", f"{session.handled} handled, {session.unhandled} unhandled in this session"),
        ("Paused", "errors now count against no session" if session.paused else None),
    ]
    rows += [
        ("Outside a session", _outside(client)),
        ("This kernel", f"{_plural(started, 'session')} started"),
        ("Stability", f"{share} ({stable} of {started} without an unhandled error)" if started else None),
    ]
    return _shown(rows)


def _delivery_rows(client: Client, countdown: float | None) -> Rows:
    """The common rows always ("Last error" as "none": the panel keeps its size), then the rare ones."""
    stats = client.delivery.stats
    (count, where), (dropped, why) = _waiting(client), _dropped(client)
    waiting = f"{count}{where}"
    if countdown is not None and count:
        waiting += f", {countdown_text(countdown)}"
    held, repaired = client.dispatcher.held, client.on_error.repaired
    return _shown([
        ("Delivered", str(stats.delivered)),
        ("Waiting", waiting),
        ("Dropped", f"{dropped}{why}"),
        ("Last error", _CHOSEN_WAIT.sub("; kept.", stats.last_error) if stats.last_error else "none"),
        ("Held", f"{held} in memory, not sent: no API key is set (lost if the kernel exits first)"
                 if held else None),
        ("Repaired", f"{repaired} events an on_error callback broke" if repaired else None),
        ("Previous kernel", client.previous_death),
        ("Kernel deaths", _records_set_aside(client)),
        *(("Problem", problem) for problem in _persistence_problems(client)),
    ])


def _shown(rows: list[tuple[str, str | None]]) -> Rows:
    return tuple((label, value) for label, value in rows if value)


def _flush_text(flush: FlushProgress | None, waiting: int, monotonic: float) -> str:
    if flush is None:
        return ""
    if flush.running:
        return f"Flushing… {waiting} waiting ({monotonic - flush.started:.0f}s)"
    if flush.failure:
        return f"Flush failed: {flush.failure}"
    # A finished flush's outcome is said only while it still describes the present.
    if flush.delivered_all:
        return f"Flushed in {flush.seconds:.1f}s: everything was delivered." if not waiting else ""
    return f"Flush gave up after {flush.seconds:.0f}s: {waiting} still waiting." if waiting else ""
