"""What the status panel shows, as plain data: no widgets and no IPython here.

`panel_view` turns a client into a `PanelView` of short strings and button states; the widget
module only copies those strings into widgets. The text and HTML fallbacks (terminal IPython,
frontends without the widget manager, nbconvert output) reuse the lines of `status.py`, so the
status magic, the fallbacks and the panel say the same things in the same words.
"""

from __future__ import annotations

import html
import math
import re
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from ..delivery.payload import refusal
from .status import (
    ago,
    host_of,
    outside_text,
    persistence_problems,
    records_set_aside,
    release_text,
    status_text,
    waiting_where,
)

if TYPE_CHECKING:
    from ..client import Client

SessionState = Literal["active", "paused", "none", "unloaded"]
# "failing": payloads wait on an endpoint that fails and will be tried again; "stopped":
# nothing gets through until the user acts (no API key, the key rejected, no such endpoint).
DeliveryState = Literal["ok", "failing", "stopped"]
NOT_LOADED = "The extension is not loaded in this kernel; run %load_ext bugsnag_ipython."
NO_ERROR = "none"

# The refusals that drop every payload, not one: each is the sentence delivery keeps as its
# last error, and what the badge says for it.
_STOPPING_REFUSALS = {
    refusal(401)[1]: "API key rejected",
    refusal(403)[1]: "API key rejected",
    refusal(404)[1]: "endpoint not found",
}
# Delivery's sentence for a failed try names the wait it chose then; the panel counts it down.
_CHOSEN_WAIT = re.compile(r"; kept, next try in [^;]*s\.$")


@dataclass
class FlushProgress:
    """A flush started from the panel, shared by every panel of the same client."""

    started: float  # time.monotonic() when the click came
    running: bool = True
    delivered_all: bool = False
    seconds: float = 0.0
    failure: str | None = None


Rows = tuple[tuple[str, str], ...]


@dataclass(frozen=True)
class PanelView:
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


def short_ago(seconds: float) -> str:
    """The panel's age of a session: coarse, so a displayed panel changes at most once a
    minute once its session is older than that."""
    return ago(seconds, coarse=True)


def clock_time(epoch_seconds: float) -> str:
    return time.strftime("%H:%M:%S UTC", time.gmtime(epoch_seconds))


def panel_view(
    client: Client | None,
    flush: FlushProgress | None,
    *,
    wall_clock: float,
    monotonic: float,
) -> PanelView:
    if client is None:
        return PanelView(
            state="unloaded",
            delivery_state="ok",
            title="not loaded",
            session=(("Session", NOT_LOADED),),
            delivery=(),
            settings=(),
            flush="",
            can_start=False,
            can_pause=False,
            can_resume=False,
            can_flush=False,
        )
    session = client.current_session()
    state: SessionState = "none" if session is None else "paused" if session.paused else "active"
    waiting = waiting_count(client)
    flushing = flush is not None and flush.running
    health, trouble = delivery_state(client)
    countdown = retry_in(client) if health == "failing" else None
    title = state if session is None else f"{state} · {session.id[:8]}"
    return PanelView(
        state=state,
        delivery_state=health,
        title=f"{title} · {trouble}" if trouble else title,
        session=_session_rows(client, wall_clock),
        delivery=_delivery_rows(client, countdown),
        settings=_settings_rows(client),
        flush=flush_text(flush, waiting, monotonic),
        can_start=True,
        can_pause=state == "active",
        can_resume=state == "paused",
        can_flush=waiting > 0 and not flushing,
        countdown=countdown,
    )


def delivery_state(client: Client) -> tuple[DeliveryState, str]:
    """Whether delivery gets through, and the badge's words when it does not."""
    if not client.config.api_key:
        return "stopped", "not sending: no API key"
    last_error = client.delivery.stats.last_error
    if last_error in _STOPPING_REFUSALS:
        return "stopped", f"not sending: {_STOPPING_REFUSALS[last_error]}"
    if last_error and waiting_count(client):
        return "failing", "delivery failing"
    return "ok", ""


def retry_in(client: Client) -> float | None:
    """Seconds until what waits is tried again (0: now), None when nothing waits."""
    seconds = getattr(client.delivery, "retry_in", lambda: None)()
    return seconds if isinstance(seconds, int | float) else None


def countdown_text(seconds: float) -> str:
    """A wait as the panel counts it down: whole seconds, rounded up, so "in 0s" never shows."""
    whole = math.ceil(seconds)
    if whole <= 0:
        return "trying now"
    if whole < 60:
        return f"next try in {whole}s"
    return f"next try in {whole // 60} min {whole % 60:02d}s"


def waiting_count(client: Client) -> int:
    """Payloads not yet delivered but still on their way, each once: those on disk are a part
    of them, not more of them."""
    return client.delivery.queued


def _session_rows(client: Client, wall_clock: float) -> Rows:
    session = client.current_session()
    counts = client.tracker.counts
    rows: list[tuple[str, str]] = []
    if session is None:
        rows.append(("Session", "none; New session starts one"))
    else:
        rows += [
            ("Started", f"{clock_time(session.started_at)} ({short_ago(wall_clock - session.started_at)})"),
            ("Errors", f"{session.handled} handled, {session.unhandled} unhandled in this session"),
        ]
        if session.paused:
            rows.append(("Paused", "errors now count against no session"))
    outside = outside_text(client)
    if outside:
        rows.append(("Outside a session", outside))
    started = counts.sessions_started
    rows.append(("This kernel", f"{started} session{'' if started == 1 else 's'} started"))
    if started:
        stable = started - counts.sessions_with_unhandled
        share = f"{100.0 * stable / started:.1f}%"
        rows.append(("Stability", f"{share} ({stable} of {started} without an unhandled error)"))
    return tuple(rows)


def _delivery_rows(client: Client, countdown: float | None) -> Rows:
    """The rows every panel has, in a fixed order ("Last error" too, as "none"), and then the
    rare ones; the widget reserves the error's lines, so the panel keeps its size."""
    stats = client.delivery.stats
    waiting, where = waiting_where(client)
    waiting_text = f"{waiting}" + (f" ({where})" if where else "")
    if countdown is not None and waiting:
        waiting_text += f", {countdown_text(countdown)}"
    rows: list[tuple[str, str]] = [
        ("Delivered", str(stats.delivered)),
        ("Waiting", waiting_text),
    ]
    dropped = sum(stats.dropped.values()) + client.held_overflow
    reasons = [f"{n} {reason}" for reason, n in stats.dropped.most_common()]
    if client.held_overflow:
        reasons.append(f"{client.held_overflow} held too long without an API key")
    rows.append(("Dropped", f"{dropped} ({', '.join(reasons)})" if dropped else "0"))
    last_error = _CHOSEN_WAIT.sub("; kept.", stats.last_error) if stats.last_error else NO_ERROR
    rows.append(("Last error", last_error))
    if client.held:
        rows.append(("Held", f"{client.held} in memory, not sent: no API key is set "
                             "(lost if the kernel exits first)"))
    if client.on_error.repaired:
        rows.append(("Repaired", f"{client.on_error.repaired} events an on_error callback broke"))
    if client.previous_death:
        rows.append(("Previous kernel", client.previous_death))
    aside = records_set_aside(client)
    if aside:
        rows.append(("Kernel deaths", aside))
    rows += [("Problem", problem) for problem in persistence_problems(client)]
    return tuple(rows)


def _settings_rows(client: Client) -> Rows:
    config = client.config
    key = client.masked_key() + ("" if config.api_key else "; nothing is sent until one is set")
    return (
        ("Endpoints", f"events {host_of(config.notify_url)}, sessions {host_of(config.sessions_url)}"),
        ("API key", key),
        ("Release", f"stage {config.release_stage}, version {release_text(client)}"),
        # What status lists as problems besides delivery's (a refused option, no crash record).
        *(("Problem", problem) for problem in list(client.problems)),
    )


def flush_text(flush: FlushProgress | None, waiting: int, monotonic: float) -> str:
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


# -- fallbacks ------------------------------------------------------------------------------


def fallback_text(client: Client | None) -> str:
    """The readable `text/plain` of a displayed panel: the status magic's text."""
    if client is None:
        return f"BugSnag: {NOT_LOADED}"
    return status_text(client)


def fallback_html(client: Client | None) -> str:
    """The same lines as a small table, for frontends that render HTML but not widgets."""
    title, *lines = fallback_text(client).splitlines()
    cells = []
    for line in lines:
        label, _, value = line.partition(": ")
        cells.append(
            f"<tr><th style='text-align:left;padding-right:1em'>{html.escape(label)}</th>"
            f"<td style='text-align:left'>{html.escape(value)}</td></tr>"
        )
    return f"<div class='bugsnag-status'><b>{html.escape(title)}</b><table>{''.join(cells)}</table></div>"
