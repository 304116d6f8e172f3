"""The saved key at load, below IPython config and the environment, and `%bugsnag_key`'s
prompt: what it says, what it keeps, and that the key is never in what it shows. The real
prompt over a kernel's stdin channel is in test_kernel_quickstart.py."""

from __future__ import annotations

import getpass
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from bugsnag_ipython.core.config import ConfigurationError
from bugsnag_ipython.core.key_file import key_file_path, save_key
from bugsnag_ipython.notebook.extension import Extension
from tests.payloads import OTHER_KEY as OTHER

SAVED = "5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a"


@pytest.fixture
def user_config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    monkeypatch.setenv("BUGSNAG_PERSISTENCE_DIRECTORY", str(tmp_path / "persistence"))
    monkeypatch.delenv("BUGSNAG_API_KEY", raising=False)
    return key_file_path()


@pytest.fixture
def loaded(shell: Any) -> Iterator[Any]:
    made: list[Extension] = []

    def load() -> Extension:
        made.append(Extension(shell))
        return made[-1]

    yield load
    for extension in made:
        extension.client.shutdown(0.0)


def answering(monkeypatch: pytest.MonkeyPatch, answer: str) -> list[str]:
    prompts: list[str] = []

    def fake_getpass(prompt: str = "") -> str:
        prompts.append(prompt)
        return answer

    monkeypatch.setattr(getpass, "getpass", fake_getpass)
    return prompts


def test_a_saved_key_is_used_when_nothing_else_sets_one(user_config: Path, loaded: Any) -> None:
    save_key(SAVED, user_config)

    extension = loaded()

    assert extension.client.config.api_key == SAVED
    assert extension.client.origins["api_key"] == "key file"
    assert extension.options.problems == []


def test_the_environment_and_ipython_config_come_before_the_saved_key(
    user_config: Path, loaded: Any, shell: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    save_key(SAVED, user_config)
    monkeypatch.setenv("BUGSNAG_API_KEY", OTHER)
    assert loaded().client.config.api_key == OTHER
    monkeypatch.delenv("BUGSNAG_API_KEY")
    shell.config.BugsnagIPython.api_key = OTHER
    assert loaded().client.config.api_key == OTHER


def test_an_untrusted_key_file_is_not_used_and_said_once(user_config: Path, loaded: Any) -> None:
    save_key(SAVED, user_config)
    user_config.chmod(0o644)

    extension = loaded()

    assert extension.client.config.api_key is None
    [problem] = extension.options.problems
    assert "open to other users" in problem and SAVED not in problem


def test_the_prompt_sets_the_key_saves_it_and_shows_it_masked(
    user_config: Path, loaded: Any, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    extension = loaded()
    prompts = answering(monkeypatch, f"  {SAVED}\n")

    extension.ask_for_key()

    shown = capsys.readouterr()
    assert prompts == ["BugSnag API key (typing is hidden): "]
    assert shown.out == (f"API key …5a5a is set for this kernel and saved for later ones in {user_config} "
                         "(readable only by you).\n")
    assert SAVED not in shown.out + shown.err
    assert extension.client.config.api_key == SAVED and extension.client.origins["api_key"] == "key file"
    assert user_config.read_text() == SAVED + "\n"


def test_the_prompt_says_when_later_kernels_use_the_environments_key(
    user_config: Path, loaded: Any, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("BUGSNAG_API_KEY", OTHER)
    extension = loaded()
    answering(monkeypatch, SAVED)

    extension.ask_for_key()

    assert capsys.readouterr().out.endswith(
        "; kernels whose environment sets BUGSNAG_API_KEY use that key instead.\n")
    assert extension.client.config.api_key == SAVED  # the latest change wins in this kernel


@pytest.mark.parametrize("answer", ["not-a-key", OTHER + "0", OTHER[:-1] + "g"])
def test_a_bad_answer_is_one_sentence_and_keeps_nothing(
    user_config: Path, loaded: Any, monkeypatch: pytest.MonkeyPatch, answer: str
) -> None:
    extension = loaded()
    answering(monkeypatch, answer)

    with pytest.raises(ConfigurationError) as refused:
        extension.ask_for_key()

    assert refused.value._render_traceback_() == [f"bugsnag_ipython: {refused.value}"]
    assert answer not in str(refused.value)
    assert extension.client.config.api_key is None and not user_config.exists()


def test_an_empty_answer_changes_nothing(
    user_config: Path, loaded: Any, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    extension = loaded()
    answering(monkeypatch, "")

    extension.ask_for_key()

    assert capsys.readouterr().out == "No key was entered, so nothing changed.\n"
    assert not user_config.exists()


@pytest.mark.skipif(os.geteuid() != 0, reason="chown to another user needs root")
def test_a_key_that_cannot_be_saved_is_still_set_for_this_kernel(
    user_config: Path, loaded: Any, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    user_config.parent.mkdir(parents=True, mode=0o700)
    os.chown(user_config.parent, 12345, 12345)
    extension = loaded()
    answering(monkeypatch, SAVED)

    extension.ask_for_key()

    shown = capsys.readouterr()
    assert shown.err.startswith("bugsnag_ipython: API key …5a5a is set for this kernel only: ")
    assert shown.err.count("\n") == 1 and SAVED not in shown.err
    assert extension.client.config.api_key == SAVED and not user_config.exists()


def test_set_api_key_without_the_extension_only_saves(
    user_config: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import bugsnag_ipython

    answering(monkeypatch, SAVED)

    bugsnag_ipython.set_api_key()  # no shell here: nothing is loaded

    assert capsys.readouterr().out.startswith("API key …5a5a saved in ")
    assert user_config.read_text() == SAVED + "\n"
