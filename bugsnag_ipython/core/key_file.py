"""The API key saved in the user's private configuration, for kernels that have no other.

`%bugsnag_key` saves it, so that the key never has to be written into a notebook: one line, the
key, in `api_key` under the user config dir (`~/.config/bugsnag-ipython/` on Linux), the file
0600 in a 0700 folder. A kernel reads it at load, below IPython config and `BUGSNAG_API_KEY`.

Only a file this user owns, that no one else can read or write, in a folder no one else can
write, is used: a key another user planted would send this user's errors to that user's project.
Reading it is one `open()` on the loading thread (platformdirs is not imported for it on Linux,
where the rule is XDG's), and a missing file costs nothing more.
"""

from __future__ import annotations

import os
import stat
import sys
from collections.abc import Mapping
from pathlib import Path

from .config import is_api_key

APP_NAME = "bugsnag-ipython"
FILE_NAME = "api_key"
_MAX_BYTES = 256  # a key and a newline; anything longer is not a key file of ours


class KeyFileError(Exception):
    """The saved key cannot be used or written, said in one sentence with the fix."""


def key_file_path(environ: Mapping[str, str] = os.environ) -> Path:
    """Where the key is saved: the user config dir of this package, as platformdirs names it."""
    if sys.platform.startswith("linux"):
        # platformdirs' rule on Linux, without importing it on the loading thread.
        base = environ.get("XDG_CONFIG_HOME", "").strip() or os.path.expanduser("~/.config")
        return Path(base, APP_NAME, FILE_NAME)
    import platformdirs

    return Path(platformdirs.user_config_dir(APP_NAME, appauthor=False), FILE_NAME)


def read_key(path: Path) -> str | None:
    """The saved key, or None when there is none; KeyFileError when a file is there that is not
    to be trusted or holds no key."""
    flags = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0)
    try:
        fd = os.open(path, flags | getattr(os, "O_CLOEXEC", 0))
    except FileNotFoundError:
        return None
    except OSError as error:
        raise KeyFileError(
            f"The saved API key in {path} could not be read ({error.strerror or error}); "
            "remove the file, or save the key again with %bugsnag_key."
        ) from None
    try:
        _check_private(os.fstat(fd), path)
        _check_folder(path.parent)
        data = os.read(fd, _MAX_BYTES + 1)
    finally:
        os.close(fd)
    key = data.decode("ascii", "replace").strip()
    if len(data) > _MAX_BYTES or not is_api_key(key):
        raise KeyFileError(
            f"{path} holds no API key; save yours again with %bugsnag_key, or remove the file."
        )
    return key


def save_key(key: str, path: Path) -> None:
    """Write `key` to `path` atomically, the file 0600 in a folder made 0700 (KeyFileError,
    with nothing written, when that folder is not this user's)."""
    folder = path.parent
    try:
        folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        info = os.stat(folder)
        if _owner_differs(info) or not stat.S_ISDIR(info.st_mode):
            raise KeyFileError(f"{folder} is not a folder of yours, so the API key was not saved there.")
        if stat.S_IMODE(info.st_mode) & 0o077:
            os.chmod(folder, 0o700)
        temporary = folder / f".{FILE_NAME}.{os.getpid()}.{os.urandom(4).hex()}"
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0)
        fd = os.open(temporary, flags | getattr(os, "O_CLOEXEC", 0), 0o600)
        try:
            os.write(fd, (key + "\n").encode("ascii"))
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(temporary, path)
    except OSError as error:
        raise KeyFileError(
            f"The API key could not be saved in {path} ({error.strerror or error})."
        ) from None


def _check_private(info: os.stat_result, path: Path) -> None:
    if not stat.S_ISREG(info.st_mode):
        raise KeyFileError(f"{path} is not a regular file, so no saved API key is used; remove it.")
    if _owner_differs(info):
        raise KeyFileError(
            f"{path} belongs to another user, so its API key is not used; remove it and save "
            "yours with %bugsnag_key."
        )
    if stat.S_IMODE(info.st_mode) & 0o077:
        raise KeyFileError(
            f"The saved API key's file {path} is open to other users, so it is not used; "
            f"run `chmod 600 {path}` (or save the key again with %bugsnag_key)."
        )


def _check_folder(folder: Path) -> None:
    info = os.stat(folder)
    if _owner_differs(info):
        raise KeyFileError(
            f"{folder} belongs to another user, so the API key saved in it is not used; remove "
            "it and save yours with %bugsnag_key."
        )
    if stat.S_IMODE(info.st_mode) & 0o022:
        raise KeyFileError(
            f"{folder} can be written by other users, so the API key saved in it is not used; "
            f"run `chmod 700 {folder}`."
        )


def _owner_differs(info: os.stat_result) -> bool:
    geteuid = getattr(os, "geteuid", None)
    return geteuid is not None and info.st_uid != geteuid()
