"""The watcher: a small process per kernel that reports the kernel's death the moment it dies.

The kernel starts it (watcher_process.py) in a session of its own, so that the signals sent to
the kernel's process group never reach it. Its setup (the record, the options with the API key,
the device) comes as JSON lines on stdin, which other users cannot read. It waits in flock() for
the kernel's lock on its record, let go of the moment the kernel dies or ends. A removed record is
a normal end; else it claims the record (keeping the lock, so a scan leaves it alone), settles it
as the scan does and sends the event at once; what it cannot send goes to the outbox, what it
cannot store stays claimed for the next kernel. It imports little until then.
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
import sys
import threading
import time
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from ..core.basics import log
from ..core.private_files import UntrustedFile, open_private, owner_alive
from .place import DIRECTORY

if TYPE_CHECKING:
    from ..core.config import Configuration
    from ..report.kernel_death import KernelDeath

EOF_GRACE = 1.0  # seconds


class Setup:
    """The setup the kernel sent last (`current`), kept current by a thread reading stdin."""

    def __init__(self, setup: dict[str, Any], stdin: IO[bytes]) -> None:
        self.current = setup
        self._stdin = stdin
        self.woke = threading.Event()  # the main thread has the record's lock

    def read_updates(self) -> None:
        for line in self._stdin:
            self.current = parse(line) or self.current
        # EOF: the kernel stopped us or died. Dead, its lock is free too and the main thread goes
        # on; alive, it let us go. (The main thread's lock, just taken, looks like the kernel's
        # for a moment: hence the wait.)
        if owner_alive(Path(self.current["record"])) and not self.woke.wait(EOF_GRACE):
            os._exit(0)


def parse(line: bytes) -> dict[str, Any] | None:
    try:
        found = json.loads(line)
    except ValueError:
        return None
    if not isinstance(found, dict) or not isinstance(found.get("record"), str):
        return None
    return found


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
    setup = Setup(first, stdin)
    threading.Thread(target=setup.read_updates, name="setup", daemon=True).start()
    fcntl.flock(fd, fcntl.LOCK_EX)  # the kernel's lock, released as it dies or ends
    setup.woke.set()
    if os.fstat(fd).st_nlink == 0:
        return  # removed: a normal end
    report(path, fd, setup.current)


def report(path: Path, fd: int, setup: dict[str, Any]) -> None:
    """Claim the dead kernel's record and report its death, once."""
    from ..core.config import Configuration
    from .claims import SetAside, claim_locked
    from .notes import leave_note
    from .scan import settle

    claimed = claim_locked(path, fd, os.urandom(6).hex())
    if claimed is None:
        return  # a scan took it first: it reports it
    options = {name: tuple(value) if isinstance(value, list) else value
               for name, value in (setup.get("config") or {}).items()
               if name in Configuration.option_names()}
    config = Configuration().replace(**options)  # the kernel's own, valid: a failure is ours
    directory = Path(setup.get("directory") or path.parent.parent)

    def send(death: KernelDeath) -> str | None:
        return _send(death, config, setup, directory)

    note = settle(claimed, config, send, SetAside(path.parent))
    if note is not None:
        leave_note(directory / DIRECTORY, claimed.token, note)


def _send(death: KernelDeath, config: Configuration, setup: dict[str, Any], directory: Path) -> str | None:
    """POST the event now; what cannot be sent goes to the outbox. The note's outcome, or None
    when it could be neither sent nor stored."""
    from ..delivery.payload import Payload
    from ..delivery.transport import PlainTransport
    from ..report.kernel_death import death_payload, message
    from ..report.trimming import scrub
    from .notes import KEPT, NOT_SENT, REFUSED, REPORTED

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
        outbox = Outbox(directory).open()
        try:
            outbox.store(payload)
        finally:
            outbox.close()  # its lock goes: the next kernel adopts the payload
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
