"""Jupyter's servers for tests (JupyterLab, Voila, Jupyter Server), each started on a free port
and stopped when the test is done with it."""

from __future__ import annotations

import contextlib
import socket
import subprocess
from collections.abc import Iterator
from pathlib import Path

from tests.waits import eventually

START_TIMEOUT = 60.0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def listening(port: int) -> bool:
    with socket.socket() as probe:
        return probe.connect_ex(("127.0.0.1", port)) == 0


@contextlib.contextmanager
def serving(argv: list[str], cwd: Path, env: dict[str, str], log: Path) -> Iterator[str]:
    """The URL of a server started with `argv` and `--port=<a free port>`, once it listens there
    (its output goes to `log`)."""
    port = free_port()
    with log.open("w") as output:
        process = subprocess.Popen([*argv, f"--port={port}"], cwd=cwd, env=env, stdout=output,
                                   stderr=subprocess.STDOUT)
        try:
            started = eventually(lambda: listening(port) or process.poll() is not None, START_TIMEOUT)
            assert started and process.poll() is None, f"{argv[2]} did not start:\n{log.read_text()}"
            yield f"http://127.0.0.1:{port}"
        finally:
            process.terminate()
            try:
                process.wait(15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
