"""Facts about the process that payloads carry: notifier, device, runtime versions."""

from __future__ import annotations

import os
import socket
import sys
from collections.abc import Callable
from functools import cached_property
from typing import Any

from .._version import __version__

NOTIFIER = {
    "name": "Bugsnag IPython",
    "version": __version__,
    "url": "https://github.com/bugsnag-ipython/bugsnag-ipython",
}


def runtime_versions() -> dict[str, str]:
    # The modules' own __version__, not importlib.metadata: reading distribution metadata costs
    # milliseconds, and a module not imported yet is not the one this kernel runs.
    versions = {"python": "{}.{}.{}".format(*sys.version_info[:3])}
    for name, module in (("ipython", "IPython"), ("ipykernel", "ipykernel")):
        found = getattr(sys.modules.get(module), "__version__", None)
        if isinstance(found, str):
            versions[name] = found
    return versions


def device_facts() -> dict[str, Any]:
    """The device part of every payload that does not change while the kernel runs."""
    return {
        "hostname": socket.gethostname(),
        "osName": sys.platform,
        "osVersion": os.uname().release if hasattr(os, "uname") else "",
        "runtimeVersions": runtime_versions(),
    }


def jupyterhub_user() -> str | None:
    return os.environ.get("JUPYTERHUB_USER") or None


def kernel_id() -> str | None:
    """The kernel's id, from its connection file (`kernel-<id>.json` under Jupyter)."""
    connection_file: str | None = None
    kernelapp = sys.modules.get("ipykernel.kernelapp")  # only a kernel has imported it
    app_class = getattr(kernelapp, "IPKernelApp", None)
    if app_class is not None and app_class.initialized():
        connection_file = getattr(app_class.instance(), "connection_file", None) or None
    if connection_file is None:
        for index, argument in enumerate(sys.argv[:-1]):
            if argument in ("-f", "--f"):
                connection_file = sys.argv[index + 1]
    if not connection_file:
        return None
    name = os.path.basename(connection_file)
    name = name.removesuffix(".json")
    return name.removeprefix("kernel-") or None


def kernel_facts() -> dict[str, Any]:
    """The `kernel` metadata tab: which kernel, on which IPython, ipykernel and Python."""
    facts: dict[str, Any] = {}
    found = kernel_id()
    if found:
        facts["id"] = found
    versions = runtime_versions()
    for name in ("ipython", "ipykernel", "python"):
        if name in versions:
            facts[name] = versions[name]
    return facts


class PayloadFacts:
    """The device and kernel facts every payload carries, made once each: the device id is a
    file read (or write) in the persistence directory, done with the first payload."""

    def __init__(self, persistence_directory: Callable[[], str | None]) -> None:
        self._persistence_directory = persistence_directory

    @cached_property
    def device(self) -> dict[str, Any]:
        facts = device_facts()
        from . import device

        facts["id"] = device.device_id(device.persistence_directory(self._persistence_directory()))
        return facts

    @cached_property
    def kernel(self) -> dict[str, Any]:
        return kernel_facts()

    def user(self, given: dict[str, str]) -> dict[str, str]:
        """The user of a payload: set_user()'s, else JupyterHub's, else this device's id."""
        from .events import user_of

        return user_of(given, jupyterhub_user(), self.device.get("id"))
