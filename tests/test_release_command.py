"""`bugsnag-ipython release`: the current release reported to a Build API over real HTTP, and one
sentence, never a traceback, for each way it can fail."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from tests.payloads import API_KEY
from tests.test_release import git, make_repo, needs_git


def release(*args: str, cwd: Path, **env: str) -> subprocess.CompletedProcess[str]:
    base = {"PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": str(cwd)}
    return subprocess.run([sys.executable, "-m", "bugsnag_ipython", "release", *args], cwd=cwd,
                          env={**base, **env}, capture_output=True, text=True, timeout=60)


class BuildApi(ThreadingHTTPServer):
    """A Build API that keeps what it is sent and answers with `status`."""

    def __init__(self, status: int = 200, answer: dict[str, Any] | None = None) -> None:
        self.received: list[dict[str, Any]] = []
        self.status = status
        self.answer = answer if answer is not None else {"status": "ok"}
        super().__init__(("127.0.0.1", 0), _Handler)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/"


class _Handler(BaseHTTPRequestHandler):
    server: BuildApi

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        self.server.received.append(json.loads(body))
        answer = json.dumps(self.server.answer).encode()
        self.send_response(self.server.status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(answer)))
        self.end_headers()
        self.wfile.write(answer)

    def log_message(self, format: str, *args: Any) -> None:
        pass


def serve(api: BuildApi) -> Iterator[BuildApi]:
    thread = threading.Thread(target=api.serve_forever, daemon=True)
    thread.start()
    try:
        yield api
    finally:
        api.shutdown()
        api.server_close()


@pytest.fixture
def build_api() -> Iterator[BuildApi]:
    yield from serve(BuildApi())


@needs_git
def test_the_release_of_a_repository_is_reported_with_its_commit(build_api: BuildApi, tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "repo")
    git(repo, "tag", "v3.0")
    head = git(repo, "rev-parse", "HEAD")
    done = release("--metadata", "pipeline=nightly", "--metadata", "runner=cron", cwd=repo,
                   BUGSNAG_API_KEY=API_KEY, BUGSNAG_BUILD_ENDPOINT=build_api.url,
                   BUGSNAG_RELEASE_STAGE="staging")
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith(f"Reported release v3.0 (staging, commit {head[:12]})")
    [sent] = build_api.received
    assert sent == {
        "apiKey": API_KEY, "appVersion": "v3.0", "releaseStage": "staging",
        "builderName": sent["builderName"],
        "sourceControl": {"revision": head, "repository": "https://***@github.com/team/notebooks.git",
                          "provider": "github"},
        "metadata": {"pipeline": "nightly", "runner": "cron"},
    }
    assert sent["builderName"]


def test_an_explicit_version_outside_a_repository(build_api: BuildApi, tmp_path: Path) -> None:
    done = release("--app-version", "2026.12", "--builder-name", "scheduler", cwd=tmp_path,
                   BUGSNAG_API_KEY=API_KEY, BUGSNAG_BUILD_ENDPOINT=build_api.url)
    assert done.returncode == 0, done.stderr
    [sent] = build_api.received
    assert (sent["appVersion"], sent["builderName"], sent["releaseStage"]) == ("2026.12", "scheduler",
                                                                              "production")
    assert "sourceControl" not in sent


def one_sentence(done: subprocess.CompletedProcess[str]) -> str:
    assert done.returncode == 1
    assert "Traceback" not in done.stderr and done.stdout == ""
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    return lines[0]


def test_without_a_key_nothing_is_sent(build_api: BuildApi, tmp_path: Path) -> None:
    said = one_sentence(release("--app-version", "1", cwd=tmp_path, BUGSNAG_BUILD_ENDPOINT=build_api.url))
    assert "No API key" in said and "BUGSNAG_API_KEY" in said
    assert build_api.received == []


def test_a_bad_key_is_named(build_api: BuildApi, tmp_path: Path) -> None:
    said = one_sentence(release("--app-version", "1", "--api-key", "nope", cwd=tmp_path,
                                BUGSNAG_BUILD_ENDPOINT=build_api.url))
    assert "32 hexadecimal digits" in said and build_api.received == []


def test_without_a_version_to_report_it_says_how_to_give_one(build_api: BuildApi, tmp_path: Path) -> None:
    said = one_sentence(release(cwd=tmp_path, BUGSNAG_API_KEY=API_KEY, BUGSNAG_BUILD_ENDPOINT=build_api.url))
    assert "No release to report" in said and "--app-version" in said
    assert build_api.received == []


def test_a_refusal_is_said_with_the_api_s_reason(tmp_path: Path) -> None:
    for api in serve(BuildApi(400, {"errors": ["apiKey is not a valid project"]})):
        said = one_sentence(release("--app-version", "1", cwd=tmp_path, BUGSNAG_API_KEY=API_KEY,
                                    BUGSNAG_BUILD_ENDPOINT=api.url))
        assert "refused the release (HTTP 400: apiKey is not a valid project)" in said


def test_an_unreachable_api_and_a_bad_endpoint_are_one_sentence_each(tmp_path: Path) -> None:
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
    said = one_sentence(release("--app-version", "1", cwd=tmp_path, BUGSNAG_API_KEY=API_KEY,
                                BUGSNAG_BUILD_ENDPOINT=f"http://user:pw@127.0.0.1:{port}/"))
    assert "could not be reached" in said and "pw" not in said
    said = one_sentence(release("--app-version", "1", cwd=tmp_path, BUGSNAG_API_KEY=API_KEY,
                                BUGSNAG_BUILD_ENDPOINT="ftp://example"))
    assert "BUGSNAG_BUILD_ENDPOINT is not an http(s) URL" in said


def test_keys_of_smartbear_hosting_use_its_build_host() -> None:
    from bugsnag_ipython.delivery.builds import build_endpoint

    assert build_endpoint("00000" + "a" * 27, {}) == "https://build.bugsnag.smartbear.com/"
    assert build_endpoint(API_KEY, {}) == "https://build.bugsnag.com/"
    assert build_endpoint("00000" + "a" * 27, {"BUGSNAG_BUILD_ENDPOINT": "http://x/b"}) == "http://x/b"


@needs_git
def test_the_collector_takes_the_release_and_its_report_shows_the_build(
    collector: Any, tmp_path: Path
) -> None:
    from bugsnag_ipython.collector.report import build_report

    repo = make_repo(tmp_path / "repo")
    head = git(repo, "rev-parse", "HEAD")
    for endpoint in (collector.builds_url, collector.url + "/"):  # as build.bugsnag.com's root too
        done = release("--builder-name", "nightly-job", cwd=repo, BUGSNAG_API_KEY=API_KEY,
                       BUGSNAG_BUILD_ENDPOINT=endpoint, BUGSNAG_RELEASE_STAGE="nightly")
        assert done.returncode == 0, done.stderr
    assert collector.wait_for("builds", 2)
    builds = collector.store.builds()
    assert {(b.app_version, b.release_stage, b.builder_name, b.revision, b.provider) for b in builds} == {
        (head[:7], "nightly", "nightly-job", head, "github")}
    [shown] = build_report(collector.store).releases
    assert (shown.app_version, shown.release_stage) == (head[:7], "nightly")
    assert shown.build is not None and shown.build.revision == head
