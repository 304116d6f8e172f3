"""`%bugsnag_key` and `bugsnag_ipython.set_api_key()`: the API key asked for at a prompt that does
not echo (in a kernel, ipykernel's `getpass`), set for this kernel and saved for later ones, so
that it is never written into a notebook."""

from __future__ import annotations

import getpass
import os
import sys
from typing import TYPE_CHECKING

from ..core.config import ConfigurationError, is_api_key, mask_api_key
from ..core.key_file import KeyFileError, key_file_path, save_key
from .settings import CALL, KEY_FILE

if TYPE_CHECKING:
    from ..client import Client

PROMPT = "BugSnag API key (typing is hidden): "
NOT_A_KEY = (
    "That is not a BugSnag API key (32 hexadecimal digits, in Project Settings > Notifier API "
    "key), so nothing was set or saved."
)


def ask_for_key(client: Client | None, *, config_sets_key: bool = False) -> None:
    """Prompt for the key, then set it for `client` (None: not loaded) and save it. A bad answer
    raises ConfigurationError; `config_sets_key`: IPython config sets a key later kernels prefer."""
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
