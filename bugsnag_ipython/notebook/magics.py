"""`%bugsnag_session`: the panel, and start, pause, resume, status and flush from a cell;
`%bugsnag_key`: the API key, asked for at a prompt that does not echo."""

from __future__ import annotations

import argparse
import functools
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from IPython.core.error import UsageError
from IPython.core.magic import Magics, line_magic, magics_class

if TYPE_CHECKING:
    from IPython.core.magic_arguments import MagicArgumentParser

    from ..client import Client

USAGE = "%bugsnag_session [start | pause | resume | status | flush [SECONDS]]"
SUBCOMMANDS = """\
  (none)           show the live status panel
  start            start a new session, replacing the current one
  pause            errors from now on count against no session
  resume           resume the paused session (or start one if there is none)
  status           session, counts, delivery, endpoints and the API key (masked), as text
  flush [SECONDS]  try to deliver everything now, waiting at most SECONDS (default 5)
  --help, -h       this help"""


@magics_class
class BugsnagMagics(Magics):
    """The two magics, on one client; the panel and the key prompt are the extension's."""

    def __init__(self, shell: Any, client: Client, show_panel: Callable[[], None],
                 ask_for_key: Callable[[], None]) -> None:
        super().__init__(shell)
        self.client = client
        self.show_panel = show_panel
        self.ask_for_key = ask_for_key

    @line_magic
    def bugsnag_session(self, line: str) -> None:
        """The live status panel, or a subcommand; `%bugsnag_session -h` says what each does."""
        from .status import flush_outcome, session_change, status_text  # here, not at load

        options = session_arguments().parse_argstring(line)
        command, seconds = options.subcommand, options.seconds
        if options.help:
            print(session_arguments().format_help(), end="")
        elif seconds is not None and command != "flush":
            raise UsageError(f"{command or 'the panel'} takes no arguments; usage: {USAGE}")
        elif command is None:
            self.show_panel()
        elif command == "status":
            print(status_text(self.client))
        elif command != "flush":
            print(session_change(self.client, command))
        elif seconds is not None and seconds < 0:
            raise UsageError(f"flush takes a number of seconds, 0 or more; usage: {USAGE}")
        else:
            print(flush_outcome(self.client, self.client.flush(5.0 if seconds is None else seconds)))

    @line_magic
    def bugsnag_key(self, line: str) -> None:
        """Ask for the BugSnag API key (typing is hidden), use it in this kernel and save it,
        readable only by you, for later kernels. The key is never shown."""
        if line.strip():
            # Whatever was typed after the magic may be the key itself: it is not echoed back.
            raise UsageError("%bugsnag_key takes no argument: it asks for the key, so that the "
                             "key is not written into the notebook.")
        self.ask_for_key()


@functools.cache
def session_arguments() -> MagicArgumentParser:
    """`%bugsnag_session`'s parser (IPython's, whose errors are UsageErrors), made at first use."""
    from IPython.core.magic_arguments import MagicArgumentParser

    # argparse formats the usage with %, so the magic's own % is doubled.
    parser = MagicArgumentParser("bugsnag_session", usage=USAGE.replace("%", "%%"), description=SUBCOMMANDS,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("-h", "--help", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("subcommand", nargs="?", choices=("start", "pause", "resume", "status", "flush"),
                        help=argparse.SUPPRESS)
    parser.add_argument("seconds", nargs="?", type=float, help=argparse.SUPPRESS)
    return parser
