"""The device id: a random id made once per OS user and kept in the persistence directory.

BugSnag counts "users affected" by `user.id`; as bugsnag-android does, the id of a user who
set none is the device's, so every kernel of one OS user counts as the same user.
"""

from __future__ import annotations

import contextlib
import os
import re
import uuid
from pathlib import Path

from ..core.basics import log
from ..core.private_files import RefusedDirectory, make_private, read_private, say_once

DEVICE_ID_FILE = "device-id"
APP_NAME = "bugsnag-ipython"
_VALID = re.compile(r"[0-9a-f]{32}")
MAX_BYTES = 64  # an id and its newline; a larger file is not one


def persistence_directory(configured: str | None) -> str:
    """The configured directory, else the user cache dir (platformdirs, imported only here)."""
    if configured:
        return os.path.expanduser(configured)
    import platformdirs

    return str(platformdirs.user_cache_dir(APP_NAME, appauthor=False))


def device_id(directory: str) -> str:
    """The id stored in `directory`, made (mode 0600, in a 0700 directory) if there is none.

    When the directory cannot be written, or is not this user's alone (another user's, or open
    to others and not to be made private), the id is made for this process only: reports still
    work, they just count this kernel as a user of its own.
    """
    path = os.path.join(directory, DEVICE_ID_FILE)
    made = uuid.uuid4().hex
    try:
        make_private(directory)
    except RefusedDirectory as error:
        say_once(error)  # the sentence the outbox and the crash record say: one, once
        return made
    found = _read(path)
    if found is not None:
        return found
    try:
        temporary = f"{path}.{made}.tmp"
        descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(descriptor, "w") as file:
            file.write(made + "\n")
        try:
            # link() fails if another kernel made the file first: then its id is the one.
            os.link(temporary, path)
        except FileExistsError:
            if _read(path) is None:  # a damaged file: ours replaces it
                os.replace(temporary, path)
        except OSError:  # a file system without hard links
            os.replace(temporary, path)
        finally:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(temporary)
    except OSError as error:
        log.debug("could not keep the device id in %s: %s", directory, error)
        return made
    return _read(path) or made


def _read(path: str) -> str | None:
    try:
        # Never through a link, never another's file, never more than an id and its newline.
        text = read_private(Path(path), MAX_BYTES).decode("ascii").strip()
    except (OSError, ValueError):  # UntrustedFile and UnicodeDecodeError are ValueErrors
        return None
    return text if _VALID.fullmatch(text) else None
