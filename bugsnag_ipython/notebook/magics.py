"""`%bugsnag_session`: the panel, and start, pause, resume, status and flush from a cell;
`%bugsnag_key`: the API key, asked for at a prompt that does not echo."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from IPython.core.error import UsageError
from IPython.core.magic import Magics, line_magic, magics_class

from ..core.config import ConfigurationError, is_api_key, mask_api_key
from ..core.key_file import KeyFileError, key_file_path, save_key
from .settings import CALL, KEY_FILE

if TYPE_CHECKING:
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
    """The two magics, on one client; the panel and the key prompt's options are the extension's."""

    def __init__(self, shell: Any, client: Client, show_panel: Callable[[], None],
                 ask_for_key: Callable[[], None]) -> None:
        super().__init__(shell)
        self.client = client
        self.show_panel = show_panel
        self.ask_for_key = ask_for_key

    @line_magic
    def bugsnag_session(self, line: str) -> None:
        """The live status panel, or a subcommand; `%bugsnag_session -h` says what each does."""
        from IPython.core.magic_arguments import MagicArgumentParser as Parser  # its errors are UsageErrors

        from .status import flush_outcome, session_change, status_text  # here, not at load

        # argparse formats the usage with %, so the magic's own % is doubled.
        parser = Parser("bugsnag_session", usage=USAGE.replace("%", "%%"),
                        description=SUBCOMMANDS, formatter_class=argparse.RawDescriptionHelpFormatter)
        parser.add_argument("-h", "--help", action="store_true", help=argparse.SUPPRESS)
        parser.add_argument("subcommand", nargs="?", choices=("start", "pause", "resume", "status", "flush"),
                            help=argparse.SUPPRESS)
        parser.add_argument("seconds", nargs="?", type=float, help=argparse.SUPPRESS)
        options = parser.parse_argstring(line)
        command, seconds = options.subcommand, options.seconds
        if options.help:
            print(parser.format_help(), end="")
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


PROMPT = "BugSnag API key (typing is hidden): "
NOT_A_KEY = (
    "That is not a BugSnag API key (32 hexadecimal digits, in Project Settings > Notifier API "
    "key), so nothing was set or saved."
)


def ask_for_key(client: Client | None, *, config_sets_key: bool = False) -> None:
    """`%bugsnag_key` and `bugsnag_ipython.set_api_key()`: prompt for the key (so that no notebook holds it),
    set it for `client` (None: not loaded) and save it; `config_sets_key`: IPython config sets one."""
    import getpass  # here: loading the extension need not import it

    try:
        answer = getpass.getpass(PROMPT)
    except (NotImplementedError, EOFError):  # ipykernel's StdinNotImplementedError; no stdin
        print(
            "bugsnag_ipython: this frontend cannot prompt for input (a scheduled run, say), so "
            "the key was not asked for; set BUGSNAG_API_KEY in the kernel's environment instead.",
            file=sys.stderr,
        )
        return
    key = answer.strip()
    if not key:
        print("No key was entered, so nothing changed.")
        return
    if not is_api_key(key):
        raise ConfigurationError(NOT_A_KEY)
    path = key_file_path()
    try:
        save_key(key, path)
    except KeyFileError as error:
        if client is not None:
            client.configure(CALL, api_key=key)
        print(f"bugsnag_ipython: API key {mask_api_key(key)} is set for this kernel only: {error}",
              file=sys.stderr)
        return
    if client is None:
        print(f"API key {mask_api_key(key)} saved in {path} (readable only by you): kernels that "
              "load bugsnag_ipython from now on use it (%load_ext bugsnag_ipython here).")
        return
    overridden = ""
    if os.environ.get("BUGSNAG_API_KEY", "").strip():
        overridden = "; kernels whose environment sets BUGSNAG_API_KEY use that key instead"
    elif config_sets_key:
        overridden = "; kernels use the api_key of your IPython config instead while it sets one"
    client.configure(KEY_FILE, api_key=key)
    print(f"API key {mask_api_key(key)} is set for this kernel and saved for later ones in {path} "
          f"(readable only by you){overridden}.")
