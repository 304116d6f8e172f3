"""The launch's work off the loading thread: the default release, and the launch session's payload
(the device id, the outbox, importing `requests`), made once the kernel is idle, or by a report,
flush or exit first (`send_now`), so it is never lost nor sent after what follows it."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING

from . import forkguard
from .basics import log
from .sessions import SessionSnapshot

if TYPE_CHECKING:
    from .release import Release

LAUNCH_DELAY = 0.5  # seconds after the launch before its session's payload is made
LAUNCH_DELAY_MAX = 5.0  # ...waiting at most this long for a running cell to end
LAUNCH_POLL = 0.05
RELEASE_WAIT = 1.0  # seconds a payload or `%config` waits at most for the default release

_live = forkguard.ForgottenInChildren()


class LaunchSession:
    """Holds the session started during the launch until the kernel is idle, then sends it. A
    forked child leaves it to its parent: sent from both, one launch would count twice."""

    def __init__(self, *, send: Callable[[SessionSnapshot], None], prepare: Callable[[], object],
                 busy: Callable[[], bool]) -> None:  # prepare: reads the facts; busy: a cell runs
        self._send = send
        self._prepare = prepare
        self._busy = busy
        self._launching = False
        self._session: SessionSnapshot | None = None
        self._lock = threading.Lock()
        _live.add(self)

    def forget_after_fork(self) -> None:
        self._session = None
        self._lock = threading.Lock()  # a thread of the parent may have held it at the fork

    def launch(self, start: Callable[[], object]) -> None:
        """Run `start` (the tracker's launch); the session it starts is sent once the kernel is idle."""
        self._launching = True
        try:
            start()
        finally:
            self._launching = False
        if self._session is not None:
            threading.Thread(target=self._send_when_idle, name="bugsnag-launch", daemon=True).start()

    def hold(self, session: SessionSnapshot) -> bool:
        """Keep a session started during the launch, to send later; False outside it."""
        if self._launching:
            self._session = session
        return self._launching

    def send_now(self) -> None:
        """Make and hand over the launch session's payload, if it is still to be sent."""
        with self._lock:
            session, self._session = self._session, None
            if session is not None:
                self._send(session)

    def _send_when_idle(self) -> None:
        deadline = time.monotonic() + LAUNCH_DELAY_MAX
        time.sleep(LAUNCH_DELAY)
        while self._busy() and time.monotonic() < deadline:
            time.sleep(LAUNCH_POLL)  # a cell is running: it has the interpreter to itself
        try:
            with forkguard.no_fork:  # the device id may import platformdirs; the send takes locks
                self._prepare()
                self.send_now()
        except Exception as error:
            log.warning("the launch session could not be stored (%s).", error)


class ReleaseLookup:
    """The default release (release.py), looked for on a daemon thread as the kernel starts."""

    def __init__(self) -> None:
        self._thread: threading.Thread | None = None
        self._release: Release | None = None

    def start(self, directory: str | None, env: Mapping[str, str]) -> None:
        thread = threading.Thread(target=self._find, args=(directory, dict(env)), name="bugsnag-release",
                                  daemon=True)
        thread.start()
        self._thread = thread  # set once started: a thread not yet started cannot be joined

    def _find(self, directory: str | None, env: Mapping[str, str]) -> None:
        try:
            with forkguard.no_fork:  # its imports take the import lock: see forkguard
                from .release import find_release

            self._release = find_release(directory, env)
        except Exception:  # an odd repository is no release; nothing is said
            self._release = None

    def result(self, timeout: float = RELEASE_WAIT) -> Release | None:
        """The release, waiting at most `timeout` for a look in progress."""
        if self._thread is not None:
            self._thread.join(timeout)
        return self._release

    @property
    def looking(self) -> bool:
        return self._thread is not None and self._thread.is_alive()
