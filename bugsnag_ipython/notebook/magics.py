"""`%bugsnag_session`: start, pause, resume, status and flush from a cell; `%bugsnag_key`: the
API key, asked for at a prompt that does not echo."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from IPython.core.error import UsageError
from IPython.core.magic import Magics, line_magic, magics_class

from .status import status_text

if TYPE_CHECKING:
    from .extension import Extension

SUBCOMMANDS = ("start", "pause", "resume", "status", "flush")
USAGE = "usage: %bugsnag_session [start | pause | resume | status | flush [SECONDS]]"
HELP_WORDS = ("--help", "-h", "help")
HELP = """usage: %bugsnag_session [SUBCOMMAND]

  (none)           show the live status panel
  start            start a new session, replacing the current one
  pause            errors from now on count against no session
  resume           resume the paused session (or start one if there is none)
  status           session, counts, delivery, endpoints and the API key (masked), as text
  flush [SECONDS]  try to deliver everything now, waiting at most SECONDS (default 5)
  --help, -h       this help"""


@magics_class
class BugsnagMagics(Magics):
    def __init__(self, shell: Any, *, extension: Extension) -> None:
        super().__init__(shell)
        self.extension = extension

    @line_magic
    def bugsnag_session(self, line: str) -> None:
        """Control BugSnag sessions: start, pause, resume, status, flush [SECONDS].

        Bare, it shows the status panel.
        """
        words = line.split()
        client = self.extension.client
        if not words:
            from .panel import show_panel

            show_panel(client, self.extension.panel_source())
            return
        command, arguments = words[0], words[1:]
        if command in HELP_WORDS:
            print(HELP)
            return
        if command not in SUBCOMMANDS:
            raise UsageError(f"unknown subcommand {command!r}; {USAGE}")
        if command == "flush":
            timeout = _seconds(arguments)
            done = client.flush(timeout)
            print("Everything was delivered." if done else _pending_text(client))
            return
        if arguments:
            raise UsageError(f"{command} takes no arguments; {USAGE}")
        if command == "start":
            session = client.start_session()
            print(f"Started session {session.id[:8]}.")
        elif command == "pause":
            had = client.current_session() is not None
            client.pause_session()
            print("Session paused: errors now count against no session." if had
                  else "There is no session to pause.")
        elif command == "resume":
            resumed = client.resume_session()
            current = client.current_session()
            short = current.id[:8] if current else "?"
            print(f"Resumed session {short}." if resumed else f"Session {short} is active.")
        else:
            print(status_text(client))

    @line_magic
    def bugsnag_key(self, line: str) -> None:
        """Ask for the BugSnag API key (typing is hidden), use it in this kernel and save it,
        readable only by you, for later kernels. The key is never shown."""
        if line.strip():
            # Whatever was typed after the magic may be the key itself: it is not echoed back.
            raise UsageError("%bugsnag_key takes no argument: it asks for the key, so that the "
                             "key is not written into the notebook.")
        self.extension.ask_for_key()


def _seconds(arguments: list[str]) -> float:
    if not arguments:
        return 5.0
    if len(arguments) > 1:
        raise UsageError(f"flush takes at most one number of seconds; {USAGE}")
    try:
        seconds = float(arguments[0])
    except ValueError:
        raise UsageError(f"flush takes a number of seconds, not {arguments[0]!r}; {USAGE}") from None
    if seconds < 0:
        raise UsageError(f"flush takes a number of seconds, 0 or more; {USAGE}")
    return seconds


def _pending_text(client: Any) -> str:
    parts = []
    if client.delivery.queued:
        parts.append(f"{client.delivery.queued} still being sent")
    if client.held:
        parts.append(f"{client.held} held until an API key is set")
    return "Not everything was delivered yet: " + (", ".join(parts) or "see status") + "."
