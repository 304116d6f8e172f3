"""`pip install bugsnag-ipython` makes every kernel of the environment load the extension,
beside the user's own extensions."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
import sysconfig
import venv
from pathlib import Path
from typing import Any

import pytest

from tests.kernel import Kernel

ROOT = Path(__file__).resolve().parents[2]
KERNEL_CONFIG = "etc/ipython/ipython_kernel_config.json"


def test_kernel_config_asks_for_extra_extensions_only() -> None:
    config = json.loads((ROOT / "jupyter-config" / "ipython_kernel_config.json").read_text())

    # `extra_extensions`, so that a user's own `c.InteractiveShellApp.extensions` still loads.
    assert config == {"InteractiveShellApp": {"extra_extensions": ["bugsnag_ipython"]}}


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    # With hatchling at hand, build without fetching a build environment.
    isolation = [] if importlib.util.find_spec("hatchling") is None else ["--no-build-isolation"]
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", *isolation,
         "--wheel-dir", str(out), str(ROOT)],
        check=True,
        capture_output=True,
        timeout=90,
    )
    (built,) = out.glob("bugsnag_ipython-*.whl")
    return built


def fresh_environment(where: Path, wheel: Path) -> Path:
    """A new virtual environment with the wheel installed; its dependencies (IPython,
    ipykernel, ...) come from this environment through a .pth file, which keeps the test
    offline and fast without letting this checkout's editable install in."""
    venv.EnvBuilder(with_pip=False).create(where)
    python = where / "bin" / "python"
    site = subprocess.run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        check=True, capture_output=True, text=True, timeout=30,
    ).stdout.strip()
    Path(site, "dependencies.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    subprocess.run(
        [sys.executable, "-m", "pip", "--python", str(python), "install", "--quiet", "--no-deps",
         "--no-index", str(wheel)],
        check=True,
        capture_output=True,
        timeout=60,
    )
    return python


def test_installed_wheel_loads_in_every_kernel_beside_user_extensions(
    tmp_path: Path, wheel: Path
) -> None:
    python = fresh_environment(tmp_path / "env", wheel)
    assert (tmp_path / "env" / KERNEL_CONFIG).is_file()

    # The user's own profile, with an extension of their own.
    (tmp_path / "lib").mkdir()
    (tmp_path / "lib" / "user_extension.py").write_text(
        "def load_ipython_extension(shell):\n    shell.user_ns['user_extension_loaded'] = True\n"
    )
    profile = tmp_path / "ipython" / "profile_default"
    profile.mkdir(parents=True)
    (profile / "ipython_kernel_config.py").write_text(
        "c.InteractiveShellApp.extensions = ['user_extension']\n"
    )
    env = {key: value for key, value in os.environ.items() if not key.startswith("BUGSNAG_")}
    env |= {"IPYTHONDIR": str(tmp_path / "ipython"), "PYTHONPATH": str(tmp_path / "lib")}

    answer = run_in_kernel(
        tmp_path,
        python,
        env,
        "import json, sys, bugsnag_ipython\n"
        "ip = get_ipython()\n"
        "print(json.dumps({'loaded': sorted(ip.extension_manager.loaded),\n"
        "  'user': user_extension_loaded, 'session': bugsnag_ipython.current_session() is not None,\n"
        "  'module': bugsnag_ipython.__file__, 'prefix': sys.prefix}))",
    )

    assert {"bugsnag_ipython", "user_extension"} <= set(answer["loaded"])
    assert answer["user"] is True
    assert answer["session"] is True  # the launch session, started as the kernel came up
    assert answer["module"].startswith(str(tmp_path / "env"))  # the wheel, not this checkout


def run_in_kernel(tmp_path: Path, python: Path, env: dict[str, str], code: str) -> Any:
    """Start a kernel of `python`, run one cell, return the JSON it printed."""
    # Started elsewhere than this checkout, whose package would come first on sys.path.
    kernel = Kernel(tmp_path / "kernel", env, python=python)
    try:
        result = kernel.execute(code, timeout=15)
        assert result.status == "ok", result.traceback
        return json.loads(result.stdout)
    finally:
        kernel.kill()
