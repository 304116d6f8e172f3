"""The live status panel behind bare `%bugsnag_session` and `bugsnag_ipython.panel()`. One daemon
thread (the refresher) copies the state into every displayed panel. A client's change only sets an
event, so a cell that reports errors pays next to nothing and a burst of changes is one refresh; it
also refreshes every second and as a countdown to the next try passes a second."""

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
# The session's state in green or grey; a delivery problem overrides it: amber failing, red stopped.
COLOURS = {"active": "#2e7d32", "paused": "#546e7a", "none": "#616161", "unloaded": "#616161",
           "failing": "#e65100", "stopped": "#c62828"}
# Fixed widths: a longer value (an error appearing) wraps inside its column, never moves the
# columns; the last error keeps its three lines, and the footer one line, whether shown or not.
LAYOUTS: dict[str, dict[str, str]] = {"session": {"width": "23em"}, "delivery": {"width": "25em"},
                                      "settings": {"width": "19em"}, "footer": {"min_height": "1.6em"}}
LAST_ERROR_STYLE = "line-height:1.3em;height:3.9em;overflow-y:auto"

ClientSource = Callable[[], "Client | None"]
PANELS: list[StatusPanel] = []  # every panel displayed and not seen closed yet
FLUSHES: weakref.WeakKeyDictionary[Client, FlushProgress] = weakref.WeakKeyDictionary()
_wake = threading.Event()
_refresher: threading.Thread | None = None


def show_panel(client: Client, source: ClientSource) -> None:
    """Display a live panel in a kernel, the status text anywhere else. `source` gives the client
    loaded now, so that a panel follows an unload and a reload."""
    if getattr(get_ipython(), "kernel", None) is None:
        print(status_text(client))  # terminal IPython (or plain Python) has no widget manager
        return
    try:  # a widgets library at odds with this one: text, never our traceback in the cell
        panel = StatusPanel(source)
    except Exception as error:
        log.warning("The status panel could not be built (%s); showing text.", error)
        print(status_text(client))
        return
    # The widget's bundle carries the status as text and HTML too, for where it cannot render.
    bundle = panel.box._repr_mimebundle_()
    bundle["text/plain"], bundle["text/html"] = status_text(client), status_html(client)
    display(bundle, raw=True)  # type: ignore[no-untyped-call]


def _view(client: Client | None) -> PanelView:
    flush = FLUSHES.get(client) if client is not None else None
    return panel_view(client, flush, wall_clock=time.time(), monotonic=time.monotonic())


def _session_key(client: Client | None) -> tuple[str, bool] | str | None:
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
        # A click's notice ("Resumed session 89f038a1.") is shown only while the state it
        # describes is still the state, never under a newer one.
        self.notice, self._notice_state = "", _session_key(None)
        client = source()
        # The client is the same one across unloads and reloads: listened to once.
        if client is not None and changed not in client.listeners:
            client.listeners.append(changed)
        view = _view(client)
        # Built with their first values and classes, so that the comm_open messages carry them
        # and no round of updates follows the display.
        self.html = {name: widgets.HTML(value, layout=widgets.Layout(**LAYOUTS.get(name, {})),
                                        _dom_classes=[f"bugsnag-{name}"])
                     for name, value in _html(view, "").items()}
        self.buttons: dict[str, Any] = {}
        for action, (label, tip) in BUTTONS.items():
            self.buttons[action] = button = widgets.Button(
                description=label, tooltip=tip, disabled=not getattr(view, f"can_{action}"),
                layout=widgets.Layout(width="auto"), _dom_classes=[f"bugsnag-{action}"])
            button.on_click(lambda _button, action=action: self.act(action))
            not_user_activity(button)  # the panel's clicks are not the user's work
        columns = widgets.HBox([self.html[name] for name in ("session", "delivery", "settings")],
                               layout=widgets.Layout(flex_flow="row wrap", grid_gap="0 2em"))
        self.box = widgets.VBox(
            [self.html["header"], columns, widgets.HBox(list(self.buttons.values())), self.html["footer"]],
            layout=widgets.Layout(
                border="1px solid var(--jp-border-color1, #ccc)", padding="4px 8px", width="fit-content"
            ),
            _dom_classes=["bugsnag-panel"],
        )
        global _refresher
        PANELS.append(self)
        if _refresher is None or not _refresher.is_alive():  # none yet, or in a forked child
            _refresher = threading.Thread(target=_refresh_forever, name="bugsnag-panel", daemon=True)
            _refresher.start()
        changed()

    def refresh(self) -> float | None:
        """Show the state now; the countdown it shows, for the next refresh to be timely."""
        client = self._source()
        view = _view(client)
        notice = self.notice if _session_key(client) == self._notice_state else ""
        for action, button in self.buttons.items():
            button.disabled = not getattr(view, f"can_{action}")
        for name, value in _html(view, notice).items():
            self.html[name].value = value
        return view.countdown

    def act(self, action: str) -> None:
        """A button click, on the kernel's thread: does what the magic does, never raises."""
        client = self._source()
        try:
            if client is None:
                self.notice = "The extension is not loaded; the buttons do nothing."
            elif action == "flush":
                self.notice = ""
                _flush(client)
            else:
                self.notice = session_change(client, action)
        except Exception as error:  # a click must never put a traceback anywhere
            self.notice = f"{action} failed: {type(error).__name__}: {error}"
        self._notice_state = _session_key(client)
        changed()


def _html(view: PanelView, notice: str) -> dict[str, str]:
    # The state badge last: once it says "paused", the buttons and figures already agree.
    colour = COLOURS.get(view.delivery_state, COLOURS[view.state])
    return {
        "session": _table("Session", view.session),
        "delivery": _table("Delivery", view.delivery),
        "settings": _table("Settings", view.settings),
        "footer": "<br>".join(f"<small>{html.escape(line)}</small>" for line in (view.flush, notice) if line),
        "header": f"<b>BugSnag</b> <span class='bugsnag-state' data-state='{view.state}' "
                  f"data-delivery='{view.delivery_state}' style='background:{colour};color:white;"
                  f"border-radius:3px;padding:0 6px;margin-left:4px'>{html.escape(view.title)}</span>",
    }


def _table(heading: str, rows: Rows) -> str:
    if not rows:
        return ""
    body = ""
    for label, value in rows:
        shown = html.escape(value)
        if label == "Last error":
            shown = f"<div class='bugsnag-last-error' style='{LAST_ERROR_STYLE}'>{shown}</div>"
        body += (f"<tr><td style='padding-right:1em;opacity:0.7;vertical-align:top'>{html.escape(label)}"
                 f"</td><td>{shown}</td></tr>")
    return f"<div style='font-weight:bold'>{html.escape(heading)}</div><table>{body}</table>"


def changed() -> None:
    """Called from any thread after any change; must stay this cheap."""
    _wake.set()


def _flush(client: Client) -> None:
    """Flush on a daemon thread, so the click returns at once and the kernel stays free."""
    current = FLUSHES.get(client)
    if current is not None and current.running:
        return
    progress = FLUSHES[client] = FlushProgress(started=time.monotonic())

    def run() -> None:
        try:
            progress.delivered_all = client.flush(FLUSH_SECONDS)
        except Exception as error:
            progress.failure = f"{type(error).__name__}: {error}"
        progress.seconds = time.monotonic() - progress.started
        progress.running = False
        changed()

    threading.Thread(target=run, name="bugsnag-panel-flush", daemon=True).start()
    changed()


def next_wake(countdowns: list[float | None]) -> float | None:
    """Seconds until the next refresh is due without a change, given each panel's countdown: the
    tick, or sooner when a countdown shows a new whole second; None with no panel."""
    if not countdowns:
        return None
    # The shown figure is rounded up: it changes as the countdown passes a whole second.
    return min([TICK, *((countdown - math.floor(countdown) or 1.0) + COUNTDOWN_MARGIN
                        for countdown in countdowns if countdown is not None and countdown > 0)])


def _refresh_forever() -> None:
    last, wake = 0.0, next_wake([])
    while True:
        _wake.wait(wake)
        time.sleep(max(0.0, last + REFRESH_INTERVAL - time.monotonic()))
        # Cleared before refreshing: a change during the refresh wakes the next round.
        _wake.clear()
        last = time.monotonic()
        countdowns: list[float | None] = []
        for panel in list(PANELS):
            if panel.box.comm is None:  # closed
                PANELS.remove(panel)
                continue
            try:
                countdowns.append(panel.refresh())
            except Exception:
                countdowns.append(None)
                log.debug("panel refresh failed", exc_info=True)
        wake = next_wake(countdowns)
