"""The API key `%bugsnag_key` saves in the user config dir, so that it is never written into a
notebook; a kernel reads it at load, below IPython config and `BUGSNAG_API_KEY`. Only a file that
passes the trust rule is used: a key another user planted would send this user's errors to them."""

import os
import stat
import sys
from pathlib import Path

from .config import is_api_key
from .private_files import UntrustedFile, is_mine, read_private, write_private

APP_NAME = "bugsnag-ipython"
FILE_NAME = "api_key"
_MAX_BYTES = 256  # a key and a newline; anything longer is not a key file of ours
_SAVE_AGAIN = "save yours with %bugsnag_key"


class KeyFileError(Exception):
    """The saved key cannot be used or written, said in one sentence with the fix."""


def key_file_path() -> Path:
    """Where the key is saved: the user config dir of this package, as platformdirs names it."""
    if sys.platform.startswith("linux"):
        # platformdirs' rule on Linux, without importing it on the loading thread.
        base = os.environ.get("XDG_CONFIG_HOME", "").strip() or os.path.expanduser("~/.config")
        return Path(base, APP_NAME, FILE_NAME)
    import platformdirs

    return Path(platformdirs.user_config_dir(APP_NAME, appauthor=False), FILE_NAME)


def read_key(path: Path) -> str | None:
    """The saved key, or None without one; KeyFileError if the file is untrusted or holds no key."""
    try:
        data = read_private(path, _MAX_BYTES, loose=False)
        folder = os.stat(path.parent)
    except FileNotFoundError:
        return None
    except UntrustedFile as error:
        raise KeyFileError(_untrusted(path, str(error))) from None
    except OSError as error:
        raise KeyFileError(
            f"The saved API key in {path} could not be read ({error.strerror or error}); "
            "remove the file, or save the key again with %bugsnag_key."
        ) from None
    if not is_mine(folder):
        raise KeyFileError(f"{path.parent} belongs to another user, so the API key saved in it is "
                           f"not used; remove it and {_SAVE_AGAIN}.")
    if stat.S_IMODE(folder.st_mode) & 0o022:
        raise KeyFileError(f"{path.parent} can be written by other users, so the API key saved in "
                           f"it is not used; run `chmod 700 {path.parent}`.")
    key = data.decode("ascii", "replace").strip()
    if not is_api_key(key):
        raise KeyFileError(f"{path} holds no API key; {_SAVE_AGAIN} again, or remove the file.")
    return key


def _untrusted(path: Path, reason: str) -> str:
    if reason == "it is open to other users":
        return (f"The saved API key's file {path} is open to other users, so it is not used; "
                f"run `chmod 600 {path}` (or save the key again with %bugsnag_key).")
    if reason == "it belongs to another user":
        return f"{path} belongs to another user, so its API key is not used; remove it and {_SAVE_AGAIN}."
    return f"{path} is no file of a saved API key ({reason}), so none is used; remove it."


def save_key(key: str, path: Path) -> None:
    """Write `key` to `path` at once, the file 0600 in a folder made 0700 (KeyFileError, with
    nothing written, when the folder is not this user's)."""
    folder = path.parent
    try:
        folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        facts = os.stat(folder)
        if not is_mine(facts) or not stat.S_ISDIR(facts.st_mode):
            raise KeyFileError(f"{folder} is not a folder of yours, so the API key was not saved there.")
        if stat.S_IMODE(facts.st_mode) & 0o077:
            os.chmod(folder, 0o700)
        write_private(path, (key + "\n").encode("ascii"))
    except (OSError, UntrustedFile) as error:
        reason = error.strerror if isinstance(error, OSError) and error.strerror else error
        raise KeyFileError(f"The API key could not be saved in {path} ({reason}).") from None
