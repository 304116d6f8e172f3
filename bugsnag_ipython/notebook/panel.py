"""The live status panel behind bare `%bugsnag_session` and `bugsnag_ipython.panel()`.

Nothing here runs until a panel is first shown: then one daemon thread (the refresher) starts,
and one listener joins the client's listeners. The listener only sets an event, so a cell that
reports errors pays next to nothing; the refresher wakes, waits out the rest of its interval
(coalescing bursts of changes into one refresh) and copies the state into every displayed
panel. It also refreshes once a second, so "how long ago" and an unloaded extension show up,
and while a panel counts down to the next delivery try it wakes just after each whole second of
the countdown, so the figure steps by one. With no panel left it sleeps until the next one.

Where widgets cannot render the status appears as text: terminal IPython prints it, and the
display bundle of a widget panel carries it as `text/plain` and `text/html`.

The panel is handed the client it shows and a `ClientSource` that says which client is loaded
now (the extension makes it): nothing here reaches back up to the extension.
"""

from __future__ import annotations

import math
import os
import threading
import time
import weakref
from collections.abc import Callable
from typing import TYPE_CHECKING

from IPython import get_ipython
from IPython.display import display

from ..core.basics import log
from .status import FlushProgress, PanelView, panel_view, session_change, status_html, status_text

if TYPE_CHECKING:
    from ..client import Client
    from .panel_widget import PanelWidgets

REFRESH_INTERVAL = 0.25  # at most four refreshes a second, however fast the client changes
TICK = 1.0  # the clock in the panel, and noticing an unloaded extension
COUNTDOWN_MARGIN = 0.02  # wake this long after the countdown's second has passed, not before
FLUSH_SECONDS = 5.0  # as `%bugsnag_session flush`

ClientSource = Callable[[], "Client | None"]


def show_panel(client: Client, source: ClientSource) -> None:
    """Display a live panel in a kernel; print the status text anywhere else."""
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
    display(panel.widgets.box)  # type: ignore[no-untyped-call]


def session_key(client: Client | None) -> tuple[str, bool] | str | None:
    """What a notice about the session describes: its id and whether it is paused."""
    if client is None:
        return "unloaded"
    session = client.current_session()
    return None if session is None else (session.id, session.paused)


class StatusPanel:
    """One displayed panel: its widgets and the client source they show."""

    def __init__(self, source: ClientSource, hub: Refresher | None = None) -> None:
        from .panel_widget import PanelWidgets

        self._source = source
        self._hub = hub or REFRESHER
        self._lock = threading.Lock()
        self.notice = ""
        self.countdown: float | None = None  # as of the last refresh, on the delivery's clock
        # The state a click's notice describes ("Resumed session 89f038a1."): the notice is
        # shown only while that is still the state, never under a newer one.
        self._notice_state = session_key(None)
        self.widgets: PanelWidgets = PanelWidgets(self._view(self._source()), self.notice, self.act,
                                                  self.fallback)
        self._hub.add(self)

    @property
    def closed(self) -> bool:
        return self.widgets.closed

    def refresh(self) -> None:
        client = self._source()
        view = self._view(client)
        notice = self.notice if session_key(client) == self._notice_state else ""
        self.countdown = view.countdown
        with self._lock:  # two refreshes never interleave their trait writes
            self.widgets.show(view, notice)

    def _view(self, client: Client | None) -> PanelView:
        if client is not None:
            self._hub.listen_to(client)
        return panel_view(
            client,
            self._hub.progress(client),
            wall_clock=time.time(),
            monotonic=time.monotonic(),
        )

    def fallback(self) -> tuple[str, str]:
        client = self._source()
        return status_text(client), status_html(client)

    def act(self, action: str) -> None:
        """A button click, on the kernel's thread: does what the magic does, never raises."""
        try:
            client = self._source()
            if client is None:
                self.notice = "The extension is not loaded; the buttons do nothing."
            elif action == "flush":
                self.notice = ""
                self._hub.flush(client)
            else:
                self.notice = session_change(client, action)
        except Exception as error:  # a click must never put a traceback anywhere
            self.notice = f"{action} failed: {type(error).__name__}: {error}"
        try:
            self._notice_state = session_key(self._source())
        except Exception:
            self.notice = ""
        self._hub.changed()


# -- the refresher -----------------------------------------------------------------------------


class Refresher:
    """One daemon thread that refreshes every displayed panel, coalescing changes."""

    def __init__(self, interval: float = REFRESH_INTERVAL, tick: float = TICK) -> None:
        self.interval = interval
        self.tick = tick
        self._panels: list[StatusPanel] = []
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._clients: weakref.WeakSet[Client] = weakref.WeakSet()
        # A flush started from a panel, shared by every panel of its client.
        self._flushes: weakref.WeakKeyDictionary[Client, FlushProgress] = weakref.WeakKeyDictionary()
        self._thread: threading.Thread | None = None
        self._pid = os.getpid()

    def add(self, panel: StatusPanel) -> None:
        with self._lock:
            self._panels.append(panel)
            if self._thread is None or not self._thread.is_alive() or self._pid != os.getpid():
                self._pid = os.getpid()
                self._thread = threading.Thread(target=self._run, name="bugsnag-panel", daemon=True)
                self._thread.start()
        self._wake.set()

    def listen_to(self, client: Client) -> None:
        """Join the client's listeners once. The listener stays after an unload: it only sets
        an event, and the panels then find no loaded client."""
        with self._lock:
            if client in self._clients:
                return
            self._clients.add(client)
        client.listeners.append(self.changed)

    def progress(self, client: Client | None) -> FlushProgress | None:
        with self._lock:
            return self._flushes.get(client) if client is not None else None

    def flush(self, client: Client) -> None:
        """Flush on a daemon thread, so the click returns at once and the kernel stays free."""
        with self._lock:
            current = self._flushes.get(client)
            if current is not None and current.running:
                return
            progress = self._flushes[client] = FlushProgress(started=time.monotonic())

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
        wake = self.tick
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
            delay = last + self.interval - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            # Cleared before refreshing: a change during the refresh wakes the next round.
            self._wake.clear()
            last = time.monotonic()
            self.refresh_all()

    def refresh_all(self) -> None:
        with self._lock:
            self._panels = [panel for panel in self._panels if not panel.closed]
            panels = list(self._panels)
        for panel in panels:
            try:
                panel.refresh()
            except Exception:
                log.debug("panel refresh failed", exc_info=True)


REFRESHER = Refresher()  # one for the process: its thread starts with the first panel
