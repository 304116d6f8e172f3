"""The live status panel behind bare `%bugsnag_session` and `bugsnag_ipython.panel()`.

One daemon thread (the refresher) copies the state into every displayed panel. A client's change
only sets an event, so a cell that reports errors pays next to nothing and a burst of changes is
one refresh; it also refreshes every second and as a countdown to the next try passes a second.
"""

from __future__ import annotations

import html
import math
import threading
import time
import weakref
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from IPython import get_ipython
from IPython.display import display

from ..core.basics import log
from ..sources.widgets import not_user_activity
from .status import FlushProgress, PanelView, Rows, panel_view, session_change, status_html, status_text

if TYPE_CHECKING:
    from ..client import Client

REFRESH_INTERVAL = 0.25  # at most four refreshes a second, however fast the client changes
TICK = 1.0  # the clock in the panel, and noticing an unloaded extension
COUNTDOWN_MARGIN = 0.02  # wake this long after the countdown's second has passed, not before
FLUSH_SECONDS = 5.0  # as `%bugsnag_session flush`
BUTTONS = {
    "start": ("New session", "Start a new session, replacing the current one (%bugsnag_session start)"),
    "pause": ("Pause", "Errors from now on count against no session (%bugsnag_session pause)"),
    "resume": ("Resume", "Count errors against the paused session again (%bugsnag_session resume)"),
    "flush": ("Flush", "Deliver what is waiting now, in the background (%bugsnag_session flush)"),
}
# The session's state in green or grey; a delivery problem overrides it, amber while payloads
# wait on a failing endpoint, red when nothing gets through until the user acts.
BADGE_COLOURS = {"active": "#2e7d32", "paused": "#546e7a", "none": "#616161", "unloaded": "#616161"}
DELIVERY_COLOURS = {"failing": "#e65100", "stopped": "#c62828"}
# Fixed widths: a longer value (an error appearing) wraps inside its column, never moves the
# columns; the last error keeps its three lines whether there is one or not.
COLUMN_WIDTHS = {"session": "23em", "delivery": "25em", "settings": "19em"}
LAST_ERROR_STYLE = "line-height:1.3em;height:3.9em;overflow-y:auto"

ClientSource = Callable[[], "Client | None"]


def show_panel(client: Client, source: ClientSource) -> None:
    """Display a live panel in a kernel, the status text anywhere else. `source` gives the client
    loaded now, so that a panel follows an unload and a reload."""
    shell = get_ipython()
    if shell is None or getattr(shell, "kernel", None) is None:
        # Terminal IPython (or plain Python) has no comm to a widget manager.
        print(status_text(client))
        return
    try:
        panel = StatusPanel(source)
    except Exception as error:
        log.warning("The status panel could not be built (%s); showing text.", error)
        print(status_text(client))
        return
    # The widget's bundle carries the status as text and HTML too, for where it cannot render.
    bundle = panel.box._repr_mimebundle_()
    bundle["text/plain"], bundle["text/html"] = status_text(client), status_html(client)
    display(bundle, raw=True)  # type: ignore[no-untyped-call]


def _session_key(client: Client | None) -> tuple[str, bool] | str | None:
    """What a notice about the session describes: its id and whether it is paused."""
    if client is None:
        return "unloaded"
    session = client.current_session()
    return None if session is None else (session.id, session.paused)


class StatusPanel:
    """One displayed panel: its widgets and the client source they show. Traitlets sends only
    the values a refresh changed, so an unchanged refresh costs no comm message."""

    def __init__(self, source: ClientSource) -> None:
        import ipywidgets as widgets  # here: only a kernel that shows a panel needs them

        self._source = source
        self.notice = ""
        self.countdown: float | None = None  # as of the last refresh, on the delivery's clock
        # The state a click's notice describes ("Resumed session 89f038a1."): the notice is
        # shown only while that is still the state, never under a newer one.
        self._notice_state = _session_key(None)
        client = source()
        # The client is the same one across unloads and reloads: listened to once.
        if client is not None and REFRESHER.changed not in client.listeners:
            client.listeners.append(REFRESHER.changed)
        view = self._view(client)
        # Built with their first values, so that the comm_open messages carry them and no
        # round of updates follows the display.
        self.header = widgets.HTML(_header(view))
        self.columns = {name: widgets.HTML(table, layout=widgets.Layout(width=COLUMN_WIDTHS[name]))
                        for name, table in _columns(view).items()}
        # One line kept for the flush's progress and a click's message, shown or not.
        self.footer = widgets.HTML(_footer(view, ""), layout=widgets.Layout(min_height="1.6em"))
        self.buttons: dict[str, Any] = {}
        for action, (label, tip) in BUTTONS.items():
            self.buttons[action] = button = widgets.Button(
                description=label, tooltip=tip, disabled=not getattr(view, f"can_{action}"),
                layout=widgets.Layout(width="auto"))
            button.on_click(lambda _button, action=action: self.act(action))
            not_user_activity(button)  # the panel's clicks are not the user's work
        parts = {"header": self.header, **self.columns, "footer": self.footer, **self.buttons}
        for name, widget in parts.items():
            widget.add_class(f"bugsnag-{name}")
        columns = widgets.HBox(list(self.columns.values()),
                               layout=widgets.Layout(flex_flow="row wrap", grid_gap="0 2em"))
        self.box = widgets.VBox(
            [self.header, columns, widgets.HBox(list(self.buttons.values())), self.footer],
            layout=widgets.Layout(
                border="1px solid var(--jp-border-color1, #ccc)", padding="4px 8px", width="fit-content"
            ),
        )
        self.box.add_class("bugsnag-panel")
        REFRESHER.add(self)

    @property
    def closed(self) -> bool:
        return self.box.comm is None

    def refresh(self) -> None:
        client = self._source()
        view = self._view(client)
        notice = self.notice if _session_key(client) == self._notice_state else ""
        self.countdown = view.countdown
        for name, table in _columns(view).items():
            self.columns[name].value = table
        for action, button in self.buttons.items():
            button.disabled = not getattr(view, f"can_{action}")
        self.footer.value = _footer(view, notice)
        # The state badge last: once it says "paused", the buttons and figures already agree.
        self.header.value = _header(view)

    def _view(self, client: Client | None) -> PanelView:
        flush = REFRESHER.flushes.get(client) if client is not None else None
        return panel_view(client, flush, wall_clock=time.time(), monotonic=time.monotonic())

    def act(self, action: str) -> None:
        """A button click, on the kernel's thread: does what the magic does, never raises."""
        try:
            client = self._source()
            if client is None:
                self.notice = "The extension is not loaded; the buttons do nothing."
            elif action == "flush":
                self.notice = ""
                REFRESHER.flush(client)
            else:
                self.notice = session_change(client, action)
        except Exception as error:  # a click must never put a traceback anywhere
            self.notice = f"{action} failed: {type(error).__name__}: {error}"
        try:
            self._notice_state = _session_key(self._source())
        except Exception:
            self.notice = ""
        REFRESHER.changed()


def _header(view: PanelView) -> str:
    colour = DELIVERY_COLOURS.get(view.delivery_state, BADGE_COLOURS[view.state])
    return (
        "<b>BugSnag</b> "
        f"<span class='bugsnag-state' data-state='{view.state}' data-delivery='{view.delivery_state}'"
        f" style='background:{colour};"
        "color:white;border-radius:3px;padding:0 6px;margin-left:4px'>"
        f"{html.escape(view.title)}</span>"
    )


def _columns(view: PanelView) -> dict[str, str]:
    return {"session": _table("Session", view.session), "delivery": _table("Delivery", view.delivery),
            "settings": _table("Settings", view.settings)}


def _footer(view: PanelView, notice: str) -> str:
    lines = [line for line in (view.flush, notice) if line]
    return "<br>".join(f"<small>{html.escape(line)}</small>" for line in lines)


def _table(heading: str, rows: Rows) -> str:
    if not rows:
        return ""
    body = "".join(
        f"<tr><td style='padding-right:1em;opacity:0.7;vertical-align:top'>{html.escape(label)}</td>"
        f"<td>{_value(label, value)}</td></tr>"
        for label, value in rows
    )
    return f"<div style='font-weight:bold'>{html.escape(heading)}</div><table>{body}</table>"


def _value(label: str, value: str) -> str:
    if label != "Last error":
        return html.escape(value)
    return f"<div class='bugsnag-last-error' style='{LAST_ERROR_STYLE}'>{html.escape(value)}</div>"


class Refresher:
    """One daemon thread that refreshes every displayed panel, coalescing changes."""

    def __init__(self) -> None:
        self._panels: list[StatusPanel] = []
        self._lock = threading.Lock()
        self._wake = threading.Event()
        # A flush started from a panel, shared by every panel of its client.
        self.flushes: weakref.WeakKeyDictionary[Client, FlushProgress] = weakref.WeakKeyDictionary()
        self._thread: threading.Thread | None = None

    def add(self, panel: StatusPanel) -> None:
        with self._lock:
            self._panels.append(panel)
            if self._thread is None or not self._thread.is_alive():  # none yet, or in a forked child
                self._thread = threading.Thread(target=self._run, name="bugsnag-panel", daemon=True)
                self._thread.start()
        self._wake.set()

    def flush(self, client: Client) -> None:
        """Flush on a daemon thread, so the click returns at once and the kernel stays free."""
        with self._lock:
            current = self.flushes.get(client)
            if current is not None and current.running:
                return
            progress = self.flushes[client] = FlushProgress(started=time.monotonic())

        def run() -> None:
            try:
                progress.delivered_all = client.flush(FLUSH_SECONDS)
            except Exception as error:
                progress.failure = f"{type(error).__name__}: {error}"
            progress.seconds = time.monotonic() - progress.started
            progress.running = False
            self.changed()

        threading.Thread(target=run, name="bugsnag-panel-flush", daemon=True).start()
        self.changed()

    def changed(self) -> None:
        """Called from any thread after any change; must stay this cheap."""
        self._wake.set()

    def next_wake(self) -> float | None:
        """Seconds until the next refresh is due without a change: the tick, or sooner when a
        panel's countdown shows a new whole second; None with no panel."""
        with self._lock:
            panels = list(self._panels)
        if not panels:
            return None
        wake = TICK
        for panel in panels:
            countdown = panel.countdown
            if countdown is not None and countdown > 0:
                # The shown figure is rounded up: it changes as the countdown passes a whole second.
                wake = min(wake, (countdown - math.floor(countdown) or 1.0) + COUNTDOWN_MARGIN)
        return wake

    def _run(self) -> None:
        last = 0.0
        while True:
            self._wake.wait(self.next_wake())
            delay = last + REFRESH_INTERVAL - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            # Cleared before refreshing: a change during the refresh wakes the next round.
            self._wake.clear()
            last = time.monotonic()
            with self._lock:
                self._panels = [panel for panel in self._panels if not panel.closed]
                panels = list(self._panels)
            for panel in panels:
                try:
                    panel.refresh()
                except Exception:
                    log.debug("panel refresh failed", exc_info=True)


REFRESHER = Refresher()  # one for the process: its thread starts with the first panel
