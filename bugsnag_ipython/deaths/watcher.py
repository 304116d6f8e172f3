"""The watcher: a process per kernel, in a session of its own (out of reach of signals sent to the
kernel's group), reports the kernel's death as it dies. Its setup comes as JSON lines on stdin; it
waits in flock() for the kernel's lock: a removed record is a normal end, else it settles the record."""

from __future__ import annotations

import contextlib
import fcntl
import functools
import json
import logging
import os
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from ..core import forkguard
from ..core.basics import log
from ..core.private_files import Refusals, UntrustedFile, open_private, owner_alive, write_private
from .place import DIRECTORY

if TYPE_CHECKING:
    from ..client import Client
    from ..core.config import Configuration
    from ..report.kernel_death import KernelDeath
    from .record import CrashRecord

MODULE = "bugsnag_ipython.deaths.watcher"
NEXT_KERNEL = "this kernel's death would be reported by the next kernel that starts."
EOF_GRACE = 1.0  # seconds

_live = forkguard.ForgottenInChildren()


class WatcherProcess:
    """The kernel's handle on its watcher, a fresh interpreter (a fork of a grown kernel would own
    its old pages) with no descriptor of the kernel's but the pipe of its setup."""

    def __init__(self, client: Client, record: CrashRecord, directory: str) -> None:
        """Start the watcher and send it its setup; raises OSError when it cannot start."""
        if not sys.executable:
            raise OSError("this Python does not know its own interpreter (sys.executable)")
        self.client = client
        facts = os.stat(record.path)  # the watcher checks it opened this file
        self._setup = {"record": str(record.path), "identity": [facts.st_dev, facts.st_ino],
                       "directory": directory}
        self._sent: Configuration | None = None
        self._lock = threading.Lock()
        # Its few lines go to the kernel's log: ipykernel sends what reaches descriptor 2 into
        # the running cell, and keeps the log's own descriptor aside.
        kept = getattr(sys.stderr, "_original_stdstream_copy", None)
        self.process = subprocess.Popen(
            [sys.executable, "-m", MODULE], stdin=subprocess.PIPE, stdout=subprocess.DEVNULL,
            stderr=kept if isinstance(kept, int) else None, start_new_session=True, close_fds=True,
            bufsize=0,
        )
        self.pid = self.process.pid
        assert self.process.stdin is not None
        self._pipe = self.process.stdin
        os.set_blocking(self._pipe.fileno(), False)  # a watcher that stops reading never blocks the kernel
        _live.add(self)
        self.options_changed()

    def options_changed(self) -> None:
        """A client listener: send the setup again when the options changed."""
        config = self.client.config
        if config is self._sent:  # the common case: a listener is told of every payload
            return
        from ..report.environment import jupyterhub_user

        self._sent = config
        setup = {**self._setup, "config": {name: getattr(config, name) for name in config.option_names()},
                 "device": self.client.device, "hubUser": jupyterhub_user()}
        view = memoryview((json.dumps(setup, default=str, separators=(",", ":")) + "\n").encode())
        with self._lock:
            try:
                while view and not self._pipe.closed:
                    view = view[os.write(self._pipe.fileno(), view):]
            except OSError as error:  # gone (EPIPE), or not reading (EAGAIN): a full pipe drops it
                self.forget_after_fork()
                self.client.once.say("watcher-pipe", f"The kernel-death watcher stopped listening "
                                      f"({error.strerror or error}); {NEXT_KERNEL}")

    def stop(self) -> None:
        """Let the watcher go, closing its stdin, without waiting for it."""
        with self._lock:
            self.forget_after_fork()
        _live.discard(self)
        self.process.poll()  # reaped if it has ended; else subprocess reaps it later

    def forget_after_fork(self) -> None:
        """Close the pipe (in a forked child, its copy: the watcher must see the kernel stop it)."""
        with contextlib.suppress(OSError):
            self._pipe.close()


def parse(line: bytes) -> dict[str, Any] | None:
    try:
        found = json.loads(line)
    except ValueError:
        return None
    return found if isinstance(found, dict) and isinstance(found.get("record"), str) else None


def watch(stdin: IO[bytes]) -> None:
    first = parse(stdin.readline())
    if first is None:
        return  # stdin closed before a word: the kernel changed its mind
    path = Path(first["record"])
    try:
        fd = open_private(path)
    except (OSError, UntrustedFile):
        return  # gone already: the kernel ended (or was claimed) before we looked
    if [os.fstat(fd).st_dev, os.fstat(fd).st_ino] != first.get("identity"):
        return  # not the file the kernel made
    woke = threading.Event()  # this thread has the record's lock

    def read_updates() -> None:  # the setup the kernel sent last
        for line in stdin:
            first.update(parse(line) or {})
        # EOF: the kernel stopped us or died. Dead, its lock is free too and the main thread goes
        # on; alive, it let us go. (Our lock, just taken, looks like the kernel's for a moment.)
        if owner_alive(path) and not woke.wait(EOF_GRACE):
            os._exit(0)

    threading.Thread(target=read_updates, name="setup", daemon=True).start()
    fcntl.flock(fd, fcntl.LOCK_EX)  # the kernel's lock, released as it dies or ends
    woke.set()
    if os.fstat(fd).st_nlink == 0:
        return  # removed: a normal end
    report(path, fd, first)


def report(path: Path, fd: int, setup: dict[str, Any]) -> None:
    """Claim the dead kernel's record, keeping the lock so a scan leaves it alone, and report its death."""
    from ..core.config import Configuration
    from .scan import claim_locked, settle

    claimed = claim_locked(path, fd, os.urandom(6).hex())
    if claimed is None:
        return  # a scan took it first: it reports it
    options = {name: tuple(value) if isinstance(value, list) else value
               for name, value in (setup.get("config") or {}).items()
               if name in Configuration.option_names()}
    config = Configuration().replace(**options)  # the kernel's own, valid: a failure is ours
    directory = Path(setup.get("directory") or path.parent.parent)
    note = settle(claimed, config, functools.partial(_send, config, setup, directory), Refusals())
    if note is not None:
        with contextlib.suppress(OSError, UntrustedFile):  # a note not written is only not said
            write_private(directory / DIRECTORY / f"{claimed.name[:12]}.died", json.dumps(note).encode())


def _send(config: Configuration, setup: dict[str, Any], directory: Path, death: KernelDeath) -> str | None:
    """POST the event now, else store it in the outbox; the outcome, or None when neither worked."""
    from ..delivery.payload import Payload
    from ..delivery.transport import PlainTransport
    from ..report.kernel_death import death_payload, message
    from ..report.trimming import scrub
    from .scan import KEPT, NOT_SENT, REFUSED, REPORTED

    made = death_payload(death, config, device=setup.get("device") or {}, hub_user=setup.get("hubUser"))
    if made is None:
        return NOT_SENT
    if not config.api_key:
        return None
    payload = Payload("event", config.notify_url, config.api_key, scrub(made[1], config.secrets),
                      time.time())
    outcome = PlainTransport().send(payload)
    if outcome.delivered:
        log.info("Reported the death of the kernel (pid %d): %s.", death.pid, message(death))
        return REPORTED
    if outcome.undeliverable:
        log.warning("The endpoint refused the death of the kernel (HTTP %s); it is not sent again.",
                    outcome.status)
        return REFUSED
    from ..delivery.outbox import Outbox  # only now: the death is sent first

    try:
        with contextlib.closing(Outbox(directory).open()) as outbox:  # closed: the next kernel adopts it
            outbox.store(payload)
    except Exception:
        return None
    log.warning("The death of the kernel (pid %d) could not be sent now; it waits in the outbox of "
                "%s for the next kernel to send.", death.pid, directory)
    return KEPT


def main() -> None:
    logging.basicConfig(stream=sys.stderr, level=logging.INFO,
                        format="[bugsnag_ipython watcher] %(message)s")
    try:
        watch(sys.stdin.buffer)
    except Exception as error:
        log.warning("The kernel-death watcher failed (%s: %s); the next kernel reports the death.",
                    type(error).__name__, error)
    finally:
        logging.shutdown()
    os._exit(0)  # not waiting for the thread reading stdin


if __name__ == "__main__":
    main()
