"""Headless runs: is this kernel run by a notebook runner rather than a person?

jupyter_client gives every kernel it starts its parent's process id (`JPY_PARENT_PID`): under a
runner, that command line (from Linux's /proc) names the notebook. Jupyter Server sets
`JPY_SESSION_NAME` for a notebook a person opened; Voilà runs a notebook as a runner does, for a person.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

from ..report.run import (
    VOILA,
    HeadlessRun,
    RunnerCommand,
    dashboard_notebook,
    kernel_command,
    runner_command,
    server_command,
    voila_kernel,
)

FRONTEND_VARIABLE = "JPY_SESSION_NAME"  # the notebook a person opened in Jupyter Server
PARENT_VARIABLE = "JPY_PARENT_PID"  # set by jupyter_client for the kernels it starts


def process_command(pid: int) -> tuple[list[str], str] | None:
    """The command line and working directory of process `pid`, or None where unreadable."""
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as file:
            raw = file.read()
        cwd = os.readlink(f"/proc/{pid}/cwd")
    except OSError:
        return None
    return [part.decode("utf-8", "replace") for part in raw.split(b"\0") if part], cwd


def detect(env: Mapping[str, str], kernel_cwd: str, started_at: float) -> HeadlessRun | None:
    """The run this kernel may serve; None for a notebook a person opened, or a kernel
    jupyter_client did not start."""
    try:
        parent = int(env.get(PARENT_VARIABLE) or "")
    except ValueError:
        return None
    found = process_command(parent)
    try:
        command = runner_command(*found) if found is not None else None
    except Exception:  # an odd command line is no runner's; the notebook search may still tell
        command = None
    if command is not None:
        # Run by a runner called in a notebook's cell, it has that notebook's JPY_SESSION_NAME.
        return HeadlessRun(command, kernel_cwd, started_at)
    server = found is not None and server_command(found[0])
    if voila_kernel(env) and (server or found is None):
        # Voilà's variables, not inherited from a dashboard's kernel that started this one.
        notebook = dashboard_notebook(env, kernel_cwd, found)
        dashboard = RunnerCommand(VOILA, (notebook,) if notebook is not None else ())
        return HeadlessRun(dashboard, kernel_cwd, started_at)
    if server:
        return None  # a notebook server's kernel: a person's, named by its frontend
    if env.get(FRONTEND_VARIABLE):
        # Started by another kernel (nbclient or papermill called in a cell): the variable is
        # that kernel's notebook, not this one.
        if found is not None and kernel_command(found[0]):
            return HeadlessRun(None, kernel_cwd, started_at, inherited_frontend=True)
        return None
    return HeadlessRun(None, kernel_cwd, started_at)
