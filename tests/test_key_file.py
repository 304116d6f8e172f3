"""The API key saved by %bugsnag_key: where it lives, written private, and read only from a
file and folder of this user's that no one else can change or read."""

from __future__ import annotations

import os
import stat
import sys
from pathlib import Path

import pytest

from bugsnag_ipython.core.key_file import KeyFileError, key_file_path, read_key, save_key
from tests.payloads import API_KEY

needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="chown to another user needs root")


@pytest.fixture
def path(tmp_path: Path) -> Path:
    return tmp_path / "config" / "bugsnag-ipython" / "api_key"


def test_the_path_is_platformdirs_user_config_dir(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    import platformdirs

    for xdg in (str(tmp_path / "xdg"), ""):
        monkeypatch.setenv("XDG_CONFIG_HOME", xdg)
        expected = Path(platformdirs.user_config_dir("bugsnag-ipython", appauthor=False), "api_key")
        assert key_file_path() == expected


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the XDG rule is Linux's")
def test_finding_the_path_imports_nothing_on_linux(tmp_path: Path) -> None:
    import subprocess

    code = ("import sys; from bugsnag_ipython.core.key_file import key_file_path; key_file_path(); "
            "print('platformdirs' in sys.modules)")
    found = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert found.stdout.strip() == "False"


def test_a_saved_key_is_private_and_read_back(path: Path) -> None:
    save_key(API_KEY, path)

    assert read_key(path) == API_KEY
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    assert [p.name for p in path.parent.iterdir()] == ["api_key"]  # no temporary file left


def test_saving_again_replaces_the_key_and_makes_a_loose_folder_private(path: Path) -> None:
    save_key(API_KEY, path)
    path.parent.chmod(0o755)

    save_key("f" * 32, path)

    assert read_key(path) == "f" * 32
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700


def test_no_file_is_no_key(path: Path) -> None:
    assert read_key(path) is None


def test_a_file_others_can_read_is_not_used(path: Path) -> None:
    save_key(API_KEY, path)
    path.chmod(0o644)

    with pytest.raises(KeyFileError, match=r"is open to other users, so it is not used; run `chmod 600"):
        read_key(path)


def test_a_folder_others_can_write_is_not_used(path: Path) -> None:
    save_key(API_KEY, path)
    path.parent.chmod(0o777)

    with pytest.raises(KeyFileError, match="can be written by other users"):
        read_key(path)


@pytest.mark.parametrize("planted", ["link", "fifo", "garbage", "huge"])
def test_what_is_not_a_key_file_is_refused_without_blocking(path: Path, tmp_path: Path, planted: str) -> None:
    path.parent.mkdir(parents=True, mode=0o700)
    if planted == "link":
        (tmp_path / "elsewhere").write_text(API_KEY)
        path.symlink_to(tmp_path / "elsewhere")
    elif planted == "fifo":
        os.mkfifo(path, 0o600)
    else:
        path.write_text("not a key\n" if planted == "garbage" else API_KEY * 1000)
        path.chmod(0o600)

    with pytest.raises(KeyFileError) as refused:
        read_key(path)

    assert "\n" not in str(refused.value) and API_KEY not in str(refused.value)


@needs_root
def test_a_key_file_of_another_user_is_not_used(path: Path) -> None:
    save_key(API_KEY, path)
    os.chown(path, 12345, 12345)

    with pytest.raises(KeyFileError, match="belongs to another user"):
        read_key(path)


@needs_root
def test_a_folder_of_another_user_gets_no_key(path: Path) -> None:
    path.parent.mkdir(parents=True, mode=0o700)
    os.chown(path.parent, 12345, 12345)

    with pytest.raises(KeyFileError, match="is not a folder of yours"):
        save_key(API_KEY, path)
    assert not path.exists()
