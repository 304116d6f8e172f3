"""Releases with no configuration: real `jupyter execute` runs of a notebook in a git repository
report each commit, tag and edited tree as a release of its own; an image without git, a CI
commit and an explicit version name it otherwise; `%config` says where the version came from."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_notebook

from bugsnag_ipython.demo import KERNEL_NAME
from tests.kernel import Kernel, collector_env, installed_env
from tests.test_release import git

pytestmark = pytest.mark.skipif(shutil.which("git") is None, reason="the git binary is not installed")
BIN = Path(sys.executable).parent
RUN_TIMEOUT = 90


def write_notebook(path: Path, threshold: int) -> Path:
    notebook = new_notebook(cells=[
        new_code_cell(f"threshold = {threshold}", id="parameters"),
        new_code_cell("if threshold > 2:\n    raise ValueError('over')", id="check"),
    ])
    notebook.metadata.kernelspec = {"name": KERNEL_NAME, "display_name": "Python", "language": "python"}
    path.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(notebook, path)
    return path


class Runs:
    """Runs of notebooks by `jupyter execute` against one collector, each with its own outbox."""

    def __init__(self, work: Path, collector: Any) -> None:
        self.work = work
        self.collector = collector
        self.count = 0

    def env(self, **options: str) -> dict[str, str]:
        self.count += 1
        return installed_env(self.work, self.collector, self.work / f"outbox-{self.count}", **options)

    def run(self, notebook: Path, **options: str) -> tuple[set[str | None], set[str | None]]:
        """The app versions of the sessions and of the events this run added at the collector."""
        store = self.collector.store
        sessions_before, events_before = len(store.sessions()), len(store.events())
        subprocess.run([str(BIN / "jupyter"), "execute", "--allow-errors", notebook.name],
                       cwd=notebook.parent, env=self.env(**options), capture_output=True,
                       timeout=RUN_TIMEOUT, check=True)
        sessions = {s.app_version for s in store.sessions()[sessions_before:]}
        events = {e.app_version for e in store.events()[events_before:]}
        assert sessions and events, "the run sent no session or no event"
        return sessions, events


@pytest.fixture
def runs(tmp_path: Path, collector: Any) -> Runs:
    return Runs(tmp_path, collector)


def test_commits_tags_and_an_edited_tree_are_releases_of_their_own(runs: Runs, tmp_path: Path) -> None:
    repo = tmp_path / "notebooks"
    notebook = write_notebook(repo / "reports" / "nightly.ipynb", 3)
    git(repo, "init", "-q", "-b", "main")
    git(repo, "add", ".")
    git(repo, "commit", "-q", "-m", "first")
    first = git(repo, "rev-parse", "HEAD")[:7]
    assert runs.run(notebook) == ({first}, {first})

    write_notebook(notebook, 4)
    git(repo, "commit", "-q", "-am", "second")
    second = git(repo, "rev-parse", "HEAD")[:7]
    assert runs.run(notebook) == ({second}, {second})

    git(repo, "tag", "v1.0")
    assert runs.run(notebook) == ({"v1.0"}, {"v1.0"})

    write_notebook(notebook, 5)  # saved, not committed: the edited notebook is its own release
    # `jupyter execute` without --inplace leaves the notebook as it was: the tree stays dirty.
    assert runs.run(notebook) == ({"v1.0-dirty"}, {"v1.0-dirty"})

    # An explicit setting always wins.
    assert runs.run(notebook, BUGSNAG_APP_VERSION="2.0-rc1") == ({"2.0-rc1"}, {"2.0-rc1"})


def test_outside_a_repository_the_image_or_the_ci_commit_names_the_release(
    runs: Runs, tmp_path: Path
) -> None:
    notebook = write_notebook(tmp_path / "plain" / "job.ipynb", 3)
    image = "registry.example/team/notebook:2026.12.07@sha256:" + "ab" * 32
    assert runs.run(notebook, JUPYTER_IMAGE_SPEC=image) == ({"2026.12.07"}, {"2026.12.07"})
    sha = "0123456789abcdef0123456789abcdef01234567"
    assert runs.run(notebook, CI_COMMIT_SHA=sha) == ({sha[:7]}, {sha[:7]})
    assert runs.run(notebook) == ({None}, {None})


def test_config_status_and_the_panel_say_where_the_version_came_from(
    tmp_path: Path, collector: Any
) -> None:
    repo = tmp_path / "repo"
    repo.mkdir()
    git(repo, "init", "-q", "-b", "main")
    (repo / "a.ipynb").write_text("{}")
    git(repo, "add", ".")
    git(repo, "commit", "-q", "-m", "first")
    head = git(repo, "rev-parse", "HEAD")[:7]
    # A git that takes its time, as on a large repository or a busy machine: `%config` asked at
    # once still shows the release a payload would carry, not "(none)".
    slow = tmp_path / "slow-git"
    slow.mkdir()
    (slow / "git").write_text(f'#!/bin/sh\nsleep 0.5\nexec "{shutil.which("git")}" "$@"\n')
    (slow / "git").chmod(0o755)
    env = collector_env(collector, tmp_path / "outbox", PATH=f"{slow}{os.pathsep}{os.environ['PATH']}")
    kernel = Kernel(tmp_path / "kernel", env, cwd=repo)
    try:
        assert kernel.execute("%load_ext bugsnag_ipython").status == "ok"
        shown = kernel.execute("%config BugsnagIPython").text
        line = next(line for line in shown.splitlines() if line.strip().startswith("app_version"))
        assert line.split() == ["app_version", head, "git"]
        status = kernel.execute("%bugsnag_session status").text
        assert f"version {head} (git)" in status
        kernel.execute("import bugsnag_ipython; bugsnag_ipython.configure(app_version='3.1')")
        line = next(line for line in kernel.execute("%config BugsnagIPython").text.splitlines()
                    if line.strip().startswith("app_version"))
        assert line.split() == ["app_version", "3.1", "call"]
    finally:
        kernel.shutdown()
