"""The notifier, device and kernel facts payloads carry; the device id is the default user id."""

from __future__ import annotations

import contextlib
import os
import re
import socket
import sys
from collections.abc import Callable
from functools import cached_property
from pathlib import Path
from typing import Any

from .. import __version__
from ..core.basics import log
from ..core.persistence import persistence_directory
from ..core.private_files import RefusedDirectory, make_private, read_private, say_once
from .events import user_of

NOTIFIER = {"name": "Bugsnag IPython", "version": __version__,
            "url": "https://github.com/bugsnag-ipython/bugsnag-ipython"}
DEVICE_ID_FILE = "device-id"
_DEVICE_ID = re.compile(r"[0-9a-f]{32}")


def runtime_versions() -> dict[str, str]:
    # The modules' own __version__: importlib.metadata costs milliseconds.
    versions = {"python": "{}.{}.{}".format(*sys.version_info[:3])}
    for name, module in (("ipython", "IPython"), ("ipykernel", "ipykernel")):
        found = getattr(sys.modules.get(module), "__version__", None)
        if isinstance(found, str):
            versions[name] = found
    return versions


def jupyterhub_user() -> str | None:
    return os.environ.get("JUPYTERHUB_USER") or None


def kernel_facts() -> dict[str, Any]:
    """The `kernel` metadata tab: its id (from `kernel-<id>.json`) and the IPython, ipykernel, Python."""
    facts: dict[str, Any] = {}
    app_class = getattr(sys.modules.get("ipykernel.kernelapp"), "IPKernelApp", None)
    if app_class is not None and app_class.initialized():
        connection_file = getattr(app_class.instance(), "connection_file", None) or ""
        found = os.path.basename(connection_file).removesuffix(".json").removeprefix("kernel-")
        if found:
            facts["id"] = found
    facts.update(runtime_versions())
    return facts


def device_id(directory: str) -> str:
    """The id stored in `directory` (0600, made if none); this process's own if the directory is refused."""
    path = os.path.join(directory, DEVICE_ID_FILE)
    made = os.urandom(16).hex()
    try:
        make_private(directory)
    except RefusedDirectory as error:
        say_once(error)  # the sentence the outbox and the crash record say: one, once
        return made
    found = _read_device_id(path)
    if found is not None:
        return found
    temporary = f"{path}.{made}.tmp"
    try:
        descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(descriptor, "w") as file:
            file.write(made + "\n")
        try:
            os.link(temporary, path)  # fails if another kernel made the file first: its id wins
        except OSError:  # unless that file is damaged, or this file system has no hard links
            if _read_device_id(path) is None:
                os.replace(temporary, path)
    except OSError as error:
        log.debug("could not keep the device id in %s: %s", directory, error)
        return made
    finally:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
    return _read_device_id(path) or made


def _read_device_id(path: str) -> str | None:
    try:
        # Never through a link, never another's file, never more than an id and its newline.
        text = read_private(Path(path), 64).decode("ascii").strip()
    except (OSError, ValueError):  # UntrustedFile and UnicodeDecodeError are ValueErrors
        return None
    return text if _DEVICE_ID.fullmatch(text) else None


class PayloadFacts:
    """The device and kernel facts every payload carries; the device's made with the first payload."""

    def __init__(self, configured_directory: Callable[[], str | None]) -> None:
        self._configured_directory = configured_directory
        self.kernel = kernel_facts()

    @cached_property
    def device(self) -> dict[str, Any]:
        return {
            "hostname": socket.gethostname(),
            "osName": sys.platform,
            "osVersion": os.uname().release if hasattr(os, "uname") else "",
            "runtimeVersions": runtime_versions(),
            "id": device_id(persistence_directory(self._configured_directory())),
        }

    def user(self, given: dict[str, str]) -> dict[str, str]:
        """The user of a payload: set_user()'s, else JupyterHub's, else this device's id."""
        return user_of(given, jupyterhub_user(), self.device.get("id"))
