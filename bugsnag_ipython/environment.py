"""Facts about the process that payloads carry: notifier, device, runtime versions."""

from __future__ import annotations

import os
import platform
import socket
import sys
from importlib import metadata
from typing import Any

from . import __version__

NOTIFIER = {
    "name": "Bugsnag IPython",
    "version": __version__,
    "url": "https://github.com/bugsnag-ipython/bugsnag-ipython",
}


def _version_of(distribution: str) -> str | None:
    try:
        return metadata.version(distribution)
    except metadata.PackageNotFoundError:
        return None


def runtime_versions() -> dict[str, str]:
    versions = {"python": platform.python_version()}
    for name in ("ipython", "ipykernel"):
        found = _version_of(name)
        if found:
            versions[name] = found
    return versions


def device_facts() -> dict[str, Any]:
    """The device part of every payload that does not change while the kernel runs."""
    return {
        "hostname": socket.gethostname(),
        "osName": sys.platform,
        "osVersion": platform.release(),
        "runtimeVersions": runtime_versions(),
    }


def jupyterhub_user() -> str | None:
    return os.environ.get("JUPYTERHUB_USER") or None
