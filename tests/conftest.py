"""Shared fixtures: a real local collector and real kernels that report to it."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.kernel import Kernel, collector_env

# Every payload a client makes in a test is checked against BugSnag's shape (shape_check.py).
# fakes: the clock and recorder fixtures; cgroups: a memory-limited cgroup
pytest_plugins = ["tests.shape_check", "tests.fakes", "tests.cgroups"]

StartKernel = Callable[..., Kernel]


@pytest.fixture(scope="session", autouse=True)
def private_user_config(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """No test, nor any kernel it starts, reads an API key that someone saved on this machine
    with %bugsnag_key: the user config dir is an empty folder of the test run's."""
    folder = tmp_path_factory.mktemp("user-config")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("XDG_CONFIG_HOME", str(folder))
        yield folder


@pytest.fixture
def shell() -> Iterator[Any]:
    from IPython.core.interactiveshell import InteractiveShell

    made = InteractiveShell.instance()
    try:
        yield made
    finally:
        InteractiveShell.clear_instance()


@contextlib.contextmanager
def collecting(folder: Path, *, shapes_checked: bool = True) -> Iterator[Any]:
    """A collector running on a free port with its store in `folder`. On the way out, what
    kernels sent must have had BugSnag's shape (unless `shapes_checked` is off: junk sent on
    purpose)."""
    from tests.collector_support import ScriptedCollector
    from tests.shape_check import refused_by_validation

    server = ScriptedCollector(folder / "collector.sqlite").start()
    try:
        yield server
        refused = refused_by_validation(server) if shapes_checked else []
        assert not refused, f"the collector refused payloads for their shape: {refused}"
    finally:
        server.stop()


@pytest.fixture
def collector(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[Any]:
    """The test's collector; a test marked `sends_malformed` sends junk to it on purpose."""
    malformed = request.node.get_closest_marker("sends_malformed") is not None
    with collecting(tmp_path, shapes_checked=not malformed) as server:
        yield server


@pytest.fixture
def start_kernel(tmp_path: Path, collector: Any) -> Iterator[StartKernel]:
    """Start kernels that report to `collector`; pass env overrides ("" removes a variable),
    `load=True` (default) to `%load_ext` in the first cell, and `kernel_config` lines."""
    kernels: list[Kernel] = []
    persistence = tmp_path / "outbox"

    def start(
        *, load: bool = True, kernel_config: str = "", name: str | None = None, **env: str
    ) -> Kernel:
        root = tmp_path / (name or f"kernel-{len(kernels)}")
        kernel = Kernel(root, collector_env(collector, persistence, **env),
                        kernel_config=kernel_config)
        kernels.append(kernel)
        if load:
            loaded = kernel.execute("%load_ext bugsnag_ipython")
            assert loaded.status == "ok", loaded.traceback
        return kernel

    yield start
    for kernel in kernels:
        try:
            if kernel.alive:
                kernel.kill()
        except Exception:
            pass
