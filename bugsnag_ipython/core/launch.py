"""The launch session: started as the extension loads, its payload made a moment later.

Making and storing the launch session's payload (the device id, the outbox, the sender's first
import of `requests`) is the start-up work that would otherwise compete with the kernel's first
cells for the interpreter lock. A daemon thread does it once the kernel has been idle for
LAUNCH_DELAY; a report, flush or exit before then does it at once (`send_now`), so the launch
session is never lost nor sent after what follows it.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from . import forkguard
from .sessions import SessionSnapshot

LAUNCH_DELAY = 0.5  # seconds after the launch before its session's payload is made
LAUNCH_DELAY_MAX = 5.0  # ...waiting at most this long for a running cell to end
LAUNCH_POLL = 0.05


class LaunchSession:
    def __init__(
        self,
        *,
        send: Callable[[SessionSnapshot], None],
        prepare: Callable[[], object],
        busy: Callable[[], bool],
        warn_once: Callable[[str, str], None],
        monotonic: Callable[[], float],
    ) -> None:
        self._send = send  # makes and hands over a session's payload
        self._prepare = prepare  # the payload's facts that cost a file read, made off the cell
        self._busy = busy  # a cell is running
        self._warn_once = warn_once
        self._monotonic = monotonic
        self._launching = False
        self._session: SessionSnapshot | None = None
        self._lock = threading.Lock()

    @contextmanager
    def launching(self) -> Iterator[None]:
        """While the tracker launches: the session it starts is held, not sent on this thread."""
        self._launching = True
        try:
            yield
        finally:
            self._launching = False
        if self._session is not None:
            threading.Thread(target=self._send_when_idle, name="bugsnag-launch", daemon=True).start()

    def hold(self, session: SessionSnapshot) -> bool:
        """Keep a session started during the launch, to send later; False outside it."""
        if self._launching:
            self._session = session
        return self._launching

    @property
    def pending(self) -> bool:
        return self._session is not None

    def send_now(self) -> None:
        """Make and hand over the launch session's payload, if it is still to be sent."""
        with self._lock:
            session, self._session = self._session, None
            if session is not None:
                self._send(session)

    def _send_when_idle(self) -> None:
        deadline = self._monotonic() + LAUNCH_DELAY_MAX
        time.sleep(LAUNCH_DELAY)
        while self._busy() and self._monotonic() < deadline:
            time.sleep(LAUNCH_POLL)  # a cell is running: it has the interpreter to itself
        try:
            with forkguard.no_fork:  # the device id may import platformdirs
                self._prepare()
            self.send_now()
        except Exception as error:
            self._warn_once("launch", f"the launch session could not be stored ({error}).")
