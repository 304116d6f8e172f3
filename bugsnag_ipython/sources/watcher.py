"""The watcher: a small process per kernel that reports the kernel's death the moment it dies.

The kernel starts it (death_watch.py) as `python -m bugsnag_ipython.sources.watcher`: a fresh
interpreter, in a session of its own, so that the signals jupyter_client sends to the kernel's
process group (an interrupt, a terminate, a kill) never reach it. What it needs (the record,
the options with the API key, the device) comes as one JSON line on its stdin, and again as a
new line whenever the options change: never on its command line or in its environment, which
other users can read.

It opens the kernel's crash record itself and waits in flock() for the kernel's lock: the
system lets go of it the moment the kernel dies, however it dies, and at a normal end. So it
uses no CPU while the kernel lives, and wakes at once. Then:
- the record removed or marked ended (a shutdown request, `exit`, a restart): it exits;
- else it claims the record as the next kernel's scan would (dead_kernels.py; it keeps the
  lock, which a scan takes for "being reported now"), and for a death that counts it sends the
  KernelDied event at once, made by the same code as the scan's event (the kernel's on_error
  callbacks, which died with it, are not run). What it cannot send goes to the outbox, for the
  next kernel to send; what it cannot store is left claimed, for the next kernel's scan.
It leaves a note for the next kernel to show (death_notes.py). It also exits when its stdin
closes while the kernel still holds the lock (the kernel stopped it).

Until the kernel dies it has imported little (no IPython, no requests): the rest is imported
when there is something to report.
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
import secrets
import sys
import threading
import time
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from ..core.private_files import UntrustedFile, open_private
from .record_place import DIRECTORY

if TYPE_CHECKING:
    from ..core.config import Configuration

log = logging.getLogger("bugsnag_ipython")
EOF_GRACE = 1.0  # seconds
MODULE = __name__ if __name__ != "__main__" else "bugsnag_ipython.sources.watcher"


class Watch:
    """The setup the kernel sent last, kept current by a thread reading stdin."""

    def __init__(self, setup: dict[str, Any], stdin: IO[bytes]) -> None:
        self.setup = setup
        self._stdin = stdin
        self._lock = threading.Lock()
        self.woke = threading.Event()  # the main thread has the record's lock

    def current(self) -> dict[str, Any]:
        with self._lock:
            return self.setup

    def read_updates(self) -> None:
        for line in self._stdin:
            found = parse(line)
            if found is not None:
                with self._lock:
                    self.setup = found
        # EOF. The kernel closed it (stopped us) or died: dead, its lock is free now too, and
        # the main thread, woken by it, goes on; alive, the kernel let us go. (The lock held
        # by the main thread, just woken, looks like the kernel's for a moment: hence the wait.)
        if kernel_alive(Path(self.current()["record"])) and not self.woke.wait(EOF_GRACE):
            os._exit(0)


def parse(line: bytes) -> dict[str, Any] | None:
    try:
        found = json.loads(line)
    except ValueError:
        return None
    if not isinstance(found, dict) or not isinstance(found.get("record"), str):
        return None
    return found


def kernel_alive(path: Path) -> bool:
    """Whether the kernel still holds the lock on its record at `path`."""
    try:
        fd = open_private(path)
    except (OSError, UntrustedFile):
        return False  # removed at a normal end, or claimed: not a live kernel's
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        return True
    finally:
        os.close(fd)  # lets go of a lock taken here
    return False


def watch(stdin: IO[bytes]) -> None:
    setup = parse(stdin.readline())
    if setup is None:
        return  # stdin closed before a word: the kernel changed its mind
    path = Path(setup["record"])
    try:
        fd = open_private(path)
    except (OSError, UntrustedFile):
        return  # gone already: the kernel ended (or was claimed) before we looked
    if [os.fstat(fd).st_dev, os.fstat(fd).st_ino] != setup.get("identity"):
        return  # not the file the kernel made
    state = Watch(setup, stdin)
    threading.Thread(target=state.read_updates, name="setup", daemon=True).start()
    fcntl.flock(fd, fcntl.LOCK_EX)  # the kernel's lock, released as it dies or ends
    state.woke.set()
    if os.fstat(fd).st_nlink == 0:
        return  # removed: a normal end
    from .crash_record import SIZE, RecordContents, read_record

    try:
        contents: RecordContents | None = read_record(os.pread(fd, SIZE, 0))
    except ValueError:
        contents = None  # damaged: the scan's rules set it aside, after the claim
    if contents is not None and contents.ended:
        _remove_ended(path, fd)
        return
    report(path, fd, state.current())


def _remove_ended(path: Path, fd: int) -> None:
    """A kernel that began a normal end and was killed before it removed its record."""
    from .dead_kernels import claim_locked

    claimed = claim_locked(path, fd, secrets.token_hex(6))
    if claimed is not None:
        claimed.remove()


def report(path: Path, fd: int, setup: dict[str, Any]) -> None:
    """Claim the dead kernel's record and report its death, once."""
    from ..core.config import Configuration
    from .dead_kernels import SetAside, claim_locked, death_of, why
    from .death_notes import KEPT, NOT_SENT, REPORTED, leave_note, note_of

    options = {name: tuple(value) if isinstance(value, list) else value
               for name, value in (setup.get("config") or {}).items()
               if name in Configuration.option_names()}
    config = Configuration().replace(**options)  # the kernel's own, valid: a failure is ours
    claimed = claim_locked(path, fd, secrets.token_hex(6))
    if claimed is None:
        return  # a scan took it first: it reports it
    try:
        death = death_of(claimed, config)
    except Exception as error:  # whatever the record holds, as the scan does
        SetAside(path.parent).put(claimed.path, why(error), claimed.faults)
        return
    if death is None:
        claimed.remove()  # not a death that counts (idle, or it sent nothing while it lived)
        return
    from ..report.kernel_death import death_payload, message

    made = death_payload(death, config, device=setup.get("device") or {}, hub_user=setup.get("hubUser"))
    directory = Path(setup.get("directory") or path.parent.parent)
    outcome = NOT_SENT if made is None else _send(made[1], config, directory)
    if outcome is None:
        return  # neither sent nor stored: left claimed for the next kernel's scan
    claimed.remove()
    leave_note(directory / DIRECTORY, claimed.token, note_of(death, outcome))
    if outcome == REPORTED:
        log.info("Reported the death of the kernel (pid %d): %s.", death.pid, message(death))
    elif outcome == KEPT:
        log.warning("The death of the kernel (pid %d) could not be sent now; it waits in the outbox "
                    "of %s for the next kernel to send.", death.pid, directory)


def _send(body: bytes, config: Configuration, directory: Path) -> str | None:
    """POST the event now; what cannot be sent goes to the outbox. The note's outcome, or None
    when it could be neither sent nor stored."""
    from ..delivery.payload import Payload
    from ..delivery.transport import PlainTransport
    from ..report.scrub import scrub
    from .death_notes import KEPT, REFUSED, REPORTED

    if not config.api_key:
        return None
    payload = Payload("event", config.notify_url, config.api_key, scrub(body, config.secrets),
                      time.time())
    outcome = PlainTransport().send(payload)
    if outcome.delivered:
        return REPORTED
    if outcome.undeliverable:
        log.warning("The endpoint refused the death of the kernel (HTTP %s); it is not sent again.",
                    outcome.status)
        return REFUSED
    from ..delivery.outbox import Outbox

    try:
        outbox = Outbox(directory).open()
        try:
            outbox.store(payload)
        finally:
            outbox.close()  # its lock goes: the next kernel adopts the payload
    except Exception:
        return None
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
