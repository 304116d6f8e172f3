"""BugSnag's own Build API client, the npm package bugsnag-build-reporter, posting to the
collector: installed with npm into a temporary directory when the tests run (skipped where npm
or the registry is not reachable), and run with node."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from bugsnag_ipython.collector import Collector, build_report, format_report
from tests.payloads import API_KEY

REPORTER = "bugsnag-build-reporter@2.0.0"
# Reports one build with the reporter's API, the way its README shows; `sourceControl` is left
# out so that the reporter reads it from the repository at `path`, as it does in a CI job.
SCRIPT = """
const reportBuild = require('bugsnag-build-reporter')
const build = JSON.parse(process.argv[2])
reportBuild(build, { endpoint: process.argv[3], path: process.argv[4], logLevel: 'info' })
  .then(() => process.exit(0), () => process.exit(1))
"""


@pytest.fixture(scope="session")
def reporter(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A directory holding the installed reporter and a script that runs it."""
    npm, node = shutil.which("npm"), shutil.which("node")
    if npm is None or node is None:
        pytest.skip("npm and node are needed to install and run bugsnag-build-reporter")
    root = tmp_path_factory.mktemp("build-reporter")
    try:
        installed = subprocess.run(
            [npm, "install", "--prefix", str(root), "--cache", str(root / ".npm-cache"),
             "--no-audit", "--no-fund", "--loglevel=error", REPORTER],
            capture_output=True, text=True, timeout=300, check=False,
        )
    except subprocess.TimeoutExpired:
        pytest.skip(f"npm install {REPORTER} took over 300 s")
    if installed.returncode != 0:
        pytest.skip(f"npm install {REPORTER} failed: {installed.stderr.strip()[-300:]}")
    (root / "report.js").write_text(SCRIPT)
    yield root


@pytest.fixture
def repository(tmp_path: Path) -> tuple[Path, str]:
    """A git repository with one commit and a GitHub remote; returns it and its commit."""
    git = shutil.which("git")
    if git is None:
        pytest.skip("git is needed to make the repository the reporter reads")
    path = tmp_path / "notebooks"
    path.mkdir()
    env = {**os.environ, "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@example.com",
           "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@example.com"}

    def run(*args: str) -> str:
        return subprocess.run([git, *args], cwd=path, env=env, capture_output=True, text=True,
                              check=True).stdout.strip()

    run("init", "-q")
    run("remote", "add", "origin", "https://github.com/example/notebooks.git")
    (path / "analysis.ipynb").write_text("{}")
    run("add", "analysis.ipynb")
    run("commit", "-q", "-m", "first")
    return path, run("rev-parse", "HEAD")


def run_reporter(
    reporter: Path, build: dict[str, object], endpoint: str, path: Path
) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "BUGSNAG_RETRY_INTERVAL": "50", "BUGSNAG_TIMEOUT": "10000"}
    return subprocess.run(
        ["node", str(reporter / "report.js"), json.dumps(build), endpoint, str(path)],
        capture_output=True, text=True, timeout=60, env=env, check=False,
    )


def test_the_official_build_reporter_posts_to_the_root_and_the_build_shows_in_the_report(
    reporter: Path, repository: tuple[Path, str], collector: Collector
) -> None:
    path, commit = repository
    build = {
        "apiKey": API_KEY, "appVersion": "1.4.0", "releaseStage": "production", "builderName": "nightly"
    }
    # The collector's root, as build.bugsnag.com's: the reporter's endpoint option, unchanged.
    result = run_reporter(reporter, build, collector.url, path)
    assert result.returncode == 0, result.stdout + result.stderr

    [stored] = collector.store.builds()
    assert (stored.app_version, stored.release_stage) == ("1.4.0", "production")
    assert stored.builder_name == "nightly"
    assert (stored.provider, stored.repository, stored.revision) == (
        "github", "https://github.com/example/notebooks.git", commit,
    )
    assert stored.build["buildTool"] == "bugsnag-build-reporter"
    report = build_report(collector.store)
    [release] = report.releases
    assert release.build is not None and release.build.revision == commit
    assert f"  1.4.0 / production: build {commit[:12]} by nightly" in format_report(report).splitlines()


def test_the_official_build_reporter_shows_why_a_build_was_refused(
    reporter: Path, repository: tuple[Path, str], collector: Collector
) -> None:
    path, _ = repository
    build = {"apiKey": "not-a-key", "appVersion": "1.4.0"}
    result = run_reporter(reporter, build, collector.builds_url, path)

    assert result.returncode == 1
    assert "The field apiKey must be the project's API key" in result.stdout + result.stderr
    assert collector.store.builds() == []
    assert len(collector.store.requests("builds")) == 1  # a 400 is not retried
