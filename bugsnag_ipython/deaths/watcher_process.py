"""The kernel's handle on its watcher process (watcher.py): started once the crash record is
made, told the options over a pipe, stopped at a normal end. The watcher is a fresh interpreter
(a fork of a grown kernel would own its old pages) with no descriptor of the kernel's but the pipe.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import threading
from typing import TYPE_CHECKING

from ..core import forkguard
from ..report.environment import jupyterhub_user

if TYPE_CHECKING:
    from ..client import Client
    from ..core.config import Configuration
    from .record import CrashRecord

MODULE = "bugsnag_ipython.deaths.watcher"
NEXT_KERNEL = "this kernel's death would be reported by the next kernel that starts."

_live = forkguard.ForgottenInChildren()


class WatcherProcess:
    """One kernel's watcher process, from start() to stop()."""

    def __init__(self, client: Client, record: CrashRecord, directory: str) -> None:
        self.client = client
        self.record = record
        self.directory = directory
        self.process: subprocess.Popen[bytes] | None = None
        self._pipe: int | None = None
        self._sent: Configuration | None = None
        self._identity: list[int] = []
        self._lock = threading.Lock()

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process is not None else None

    def start(self) -> None:
        """Start the watcher and send it its setup; raises OSError when it cannot start."""
        if not sys.executable:
            raise OSError("this Python does not know its own interpreter (sys.executable)")
        facts = os.stat(self.record.path)
        self._identity = [facts.st_dev, facts.st_ino]  # the watcher checks it opened this file
        # Its few lines go to the kernel's log: ipykernel sends what reaches descriptor 2 into
        # the running cell, and keeps the log's own descriptor aside (notebook/kernel_log.py).
        kept = getattr(sys.stderr, "_original_stdstream_copy", None)
        self.process = subprocess.Popen(
            [sys.executable, "-m", MODULE], stdin=subprocess.PIPE, stdout=subprocess.DEVNULL,
            stderr=kept if isinstance(kept, int) else None, start_new_session=True, close_fds=True,
            bufsize=0,
        )
        assert self.process.stdin is not None
        self._pipe = self.process.stdin.fileno()
        # A watcher that stops reading never blocks the kernel: a full pipe drops the watcher.
        os.set_blocking(self._pipe, False)
        _live.add(self)
        self.options_changed()

    def options_changed(self) -> None:
        """A client listener: send the setup again when the options changed."""
        config = self.client.config
        if config is self._sent or self._pipe is None:
            return
        self._sent = config
        setup = {
            "record": str(self.record.path),
            "identity": self._identity,
            "directory": self.directory,
            "config": {name: getattr(config, name) for name in config.option_names()},
            "device": self.client.device,
            "hubUser": jupyterhub_user(),
        }
        self._write((json.dumps(setup, default=str, separators=(",", ":")) + "\n").encode())

    def _write(self, line: bytes) -> None:
        with self._lock:
            view = memoryview(line)
            try:
                while view and self._pipe is not None:
                    view = view[os.write(self._pipe, view):]
            except OSError as error:  # gone (EPIPE), or not reading (EAGAIN)
                self._close_pipe()
                self.client.once.say("watcher-pipe", f"The kernel-death watcher stopped listening "
                                      f"({error.strerror or error}); {NEXT_KERNEL}")

    def running(self) -> bool:
        """Whether the watcher still runs (reaps it when it has ended)."""
        return self.process is not None and self.process.poll() is None

    def stop(self) -> None:
        """Let the watcher go: its stdin closes (it has seen the record removed already at a
        normal end). Never waits for it."""
        with self._lock:
            self._close_pipe()
        _live.discard(self)
        if self.process is not None:
            self.process.poll()  # reaped if it has ended; else subprocess reaps it later

    def _close_pipe(self) -> None:
        pipe, self._pipe = self._pipe, None
        if pipe is not None and self.process is not None and self.process.stdin is not None:
            with contextlib.suppress(OSError):
                self.process.stdin.close()

    def forget_after_fork(self) -> None:
        """In a forked child: close the child's copy of the pipe, so that a child living on
        neither keeps the watcher asleep nor hides that the kernel stopped it."""
        self._close_pipe()
        self.process = None

