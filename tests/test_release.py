"""The default release: read from real git repositories, a hub's image and CI variables."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from bugsnag_ipython.core import release as release_module
from bugsnag_ipython.core.launch import ReleaseLookup
from bugsnag_ipython.core.release import (
    CI,
    GIT,
    IMAGE,
    find_release,
    git_release,
    image_version,
)

GIT_BINARY = shutil.which("git")  # found now: tests hide it from the lookup by emptying PATH
needs_git = pytest.mark.skipif(GIT_BINARY is None, reason="the git binary is not installed")


def git(repo: Path, *args: str) -> str:
    env = {**os.environ, "GIT_AUTHOR_NAME": "a", "GIT_AUTHOR_EMAIL": "a@example.com",
           "GIT_COMMITTER_NAME": "a", "GIT_COMMITTER_EMAIL": "a@example.com"}
    assert GIT_BINARY is not None
    done = subprocess.run([GIT_BINARY, "-C", str(repo), *args], env=env, check=True, capture_output=True)
    return done.stdout.decode().strip()


def make_repo(path: Path, remote: str | None = "https://ci:secret@github.com/team/notebooks.git") -> Path:
    path.mkdir(parents=True)
    git(path, "init", "-q", "-b", "main")
    if remote:
        git(path, "remote", "add", "origin", remote)
    (path / "analysis.ipynb").write_text("{}\n")
    git(path, "add", ".")
    git(path, "commit", "-q", "-m", "first")
    return path


def commit(repo: Path, text: str) -> str:
    (repo / "analysis.ipynb").write_text(text)
    git(repo, "commit", "-q", "-am", text)
    return git(repo, "rev-parse", "HEAD")


@pytest.fixture
def no_git_binary(monkeypatch: pytest.MonkeyPatch) -> None:
    """As on a machine without git: the lookup finds no `git` on PATH."""
    monkeypatch.setenv("PATH", "/nonexistent")


@needs_git
def test_each_commit_is_a_release_named_by_its_abbreviated_commit(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "repo")
    first = git(repo, "rev-parse", "HEAD")
    found = find_release(repo, {})
    assert found is not None and found.origin == GIT
    assert found.version == first[:7] and found.revision == first
    second = commit(repo, "second")
    again = find_release(repo / ".", {})
    assert again is not None and again.version == second[:7] != found.version


@needs_git
def test_a_tagged_commit_is_named_by_its_tag_and_later_commits_by_the_distance(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "repo")
    git(repo, "tag", "-a", "v1.2", "-m", "release 1.2")
    assert find_release(repo, {}).version == "v1.2"  # type: ignore[union-attr]
    head = commit(repo, "after the tag")
    assert find_release(repo, {}).version == f"v1.2-1-g{head[:7]}"  # type: ignore[union-attr]


@needs_git
def test_uncommitted_changes_to_tracked_files_are_a_release_of_their_own(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "repo")
    head = git(repo, "rev-parse", "HEAD")
    (repo / "untracked.txt").write_text("not tracked: not dirty")
    assert find_release(repo, {}).version == head[:7]  # type: ignore[union-attr]
    (repo / "analysis.ipynb").write_text('{"edited": true}\n')
    assert find_release(repo, {}).version == f"{head[:7]}-dirty"  # type: ignore[union-attr]


@needs_git
def test_the_notebook_folder_deep_in_the_repository_finds_it(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "repo")
    (repo / "reports" / "weekly").mkdir(parents=True)
    found = git_release(repo / "reports" / "weekly")
    assert found is not None and found.revision == git(repo, "rev-parse", "HEAD")


@needs_git
def test_the_first_remote_is_the_repository_without_its_credentials(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "repo")
    found = git_release(repo)
    assert found is not None
    assert found.repository == "https://***@github.com/team/notebooks.git"
    assert found.provider == "github"
    plain = git_release(make_repo(tmp_path / "other", remote="git@gitlab.example.com:t/n.git"))
    assert plain is not None and plain.repository == "git@gitlab.example.com:t/n.git"
    assert plain.provider == "gitlab"


@needs_git
def test_without_a_git_binary_the_repository_is_read_directly(tmp_path: Path, no_git_binary: None) -> None:
    repo = make_repo(tmp_path / "repo")
    head = git(repo, "rev-parse", "HEAD")
    found = find_release(repo, {})
    assert found is not None and found.version == head[:7] and found.revision == head


@needs_git
def test_without_a_git_binary_loose_and_packed_tags_name_the_commit(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    repo = make_repo(tmp_path / "repo")
    monkeypatch.setenv("PATH", "/nonexistent")
    git(repo, "tag", "-a", "v2.0", "-m", "annotated, a loose tag object")
    assert find_release(repo, {}).version == "v2.0"  # type: ignore[union-attr]
    commit(repo, "next")
    git(repo, "tag", "v2.1")  # lightweight
    git(repo, "gc", "-q")  # tags into packed-refs (peeled), the tag object into a pack
    assert not (repo / ".git" / "refs" / "tags" / "v2.1").exists()
    assert find_release(repo, {}).version == "v2.1"  # type: ignore[union-attr]
    git(repo, "checkout", "-q", "v2.0")  # detached at the annotated tag, now packed
    assert find_release(repo, {}).version == "v2.0"  # type: ignore[union-attr]


@needs_git
def test_a_worktree_reads_the_shared_refs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    repo = make_repo(tmp_path / "repo")
    git(repo, "worktree", "add", "-q", "-b", "feature", str(tmp_path / "feature"))
    monkeypatch.setenv("PATH", "/nonexistent")
    head = commit(tmp_path / "feature", "feature work")
    found = find_release(tmp_path / "feature", {})
    assert found is not None and found.revision == head


def test_outside_a_repository_the_hub_image_names_the_release(tmp_path: Path) -> None:
    env = {"JUPYTER_IMAGE_SPEC": "quay.io/team/notebook:2026.12.01", "GITHUB_SHA": "a" * 40}
    found = find_release(tmp_path, env)
    assert found is not None and (found.version, found.origin) == ("2026.12.01", IMAGE)
    assert find_release(tmp_path, {"JUPYTER_IMAGE": "team/nb:7"}).version == "7"  # type: ignore[union-attr]


def test_an_image_is_named_by_its_tag_else_its_digest() -> None:
    assert image_version("registry.example:5000/team/nb:v3@sha256:" + "ab" * 32) == "v3"
    assert image_version("registry.example:5000/team/nb@sha256:" + "cd" * 32) == "sha256:" + "cd" * 6
    assert image_version("team/nb:latest@sha256:" + "ef" * 32) == "sha256:" + "ef" * 6
    assert image_version("team/nb:latest") == "latest"
    assert image_version("registry.example:5000/team/nb") == "registry.example:5000/team/nb"


def test_without_repository_or_image_a_ci_commit_names_the_release(tmp_path: Path) -> None:
    sha = "0123456789abcdef0123456789abcdef01234567"
    found = find_release(tmp_path, {"CI_COMMIT_SHA": sha})
    assert found is not None and (found.version, found.origin, found.revision) == (sha[:7], CI, sha)
    assert find_release(tmp_path, {"GITHUB_SHA": "not a commit"}) is None
    assert find_release(tmp_path, {}) is None


def test_a_lookup_in_progress_is_waited_for_a_bounded_time(monkeypatch: pytest.MonkeyPatch,
                                                          tmp_path: Path) -> None:
    lookup = ReleaseLookup()
    assert lookup.result(10.0) is None  # never started: nothing to wait for
    gate = __import__("threading").Event()
    real = release_module.find_release

    def slow(directory: object, env: object) -> object:
        gate.wait(5)
        return real(tmp_path, {"GITHUB_SHA": "b" * 40})

    monkeypatch.setattr(release_module, "find_release", slow)
    lookup.start(str(tmp_path), {})
    assert lookup.looking and lookup.result(0.01) is None
    gate.set()
    found = lookup.result(5.0)
    assert found is not None and found.version == "b" * 7 and not lookup.looking
