"""Secrets never reach BugSnag: the API key and the endpoints' credentials in a cell's source, a
message, a breadcrumb, metadata or a dead kernel's cell are replaced by [REDACTED], and a
papermill run's URLs arrive without their credentials. Read back from the real collector, as
raw request bodies."""

from __future__ import annotations

import json
import subprocess
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, ClassVar

import pytest

from tests.conftest import StartKernel
from tests.kernel import installed_env
from tests.payloads import API_KEY
from tests.test_kernel_deaths import deaths, recording, start_cell, wait_dead

WAIT = 20.0
PASSWORD = "Endpoint-Pa55word"  # the endpoints' password: long enough to be replaced alone too


def with_credentials(url: str) -> str:
    return url.replace("http://", f"http://hook:{PASSWORD}@", 1)


def event_bodies(collector: Any) -> list[str]:
    return [r.body for r in collector.store.requests("events")]


def assert_no_secret(body: str) -> None:
    """The key is in the body once, as the payload's own apiKey (BugSnag needs it there); no
    credential of the endpoints is anywhere."""
    assert body.startswith(f'{{"apiKey":"{API_KEY}"') and body.count(API_KEY) == 1, body
    assert PASSWORD not in body and "Pa55word" not in body


def test_the_key_and_endpoint_credentials_leave_no_string_of_an_event(
    start_kernel: StartKernel, collector: Any
) -> None:
    kernel = start_kernel(BUGSNAG_NOTIFY_ENDPOINT=with_credentials(collector.notify_url),
                          BUGSNAG_SESSIONS_ENDPOINT=with_credentials(collector.sessions_url))
    kernel.execute(
        "import bugsnag_ipython as bugsnag\n"
        f"bugsnag.add_metadata('job', {{'note': 'uses {API_KEY}', 'proxy': 'hook:{PASSWORD}'}})\n"
        f"bugsnag.leave_breadcrumb('key {API_KEY}', {{'via': 'http://hook:{PASSWORD}@proxy/'}})"
    )

    raised = kernel.execute(
        f'key = "{API_KEY}"\n'
        f'raise ValueError(f"refused {{key}} at http://hook:{PASSWORD}@proxy/notify")',
        cell_id="uses-key",
    )

    assert raised.error_name == "ValueError"
    assert kernel.evaluate("bugsnag.flush(10)") is True
    for body in event_bodies(collector):
        assert_no_secret(body)
    assert all(PASSWORD not in r.body for r in collector.store.requests())  # sessions too
    [event] = [e.event for e in collector.store.events() if e.error_class == "ValueError"]
    [frame] = event["exceptions"][0]["stacktrace"]
    assert frame["code"] == {"1": 'key = "[REDACTED]"',
                             "2": 'raise ValueError(f"refused {key} at http://[REDACTED]@proxy/notify")'}
    assert event["exceptions"][0]["message"] == "refused [REDACTED] at http://[REDACTED]@proxy/notify"
    assert event["metaData"]["notebook"]["cellSource"].startswith('key = "[REDACTED]"\n')
    assert event["metaData"]["job"] == {"note": "uses [REDACTED]", "proxy": "[REDACTED]"}
    [crumb] = [c for c in event["breadcrumbs"] if c["name"].startswith("key ")]
    assert crumb == {**crumb, "name": "key [REDACTED]", "metaData": {"via": "http://[REDACTED]@proxy/"}}


def test_a_dead_kernels_cell_holding_the_key_is_reported_without_it(
    start_kernel: StartKernel, collector: Any
) -> None:
    first = recording(start_kernel())
    start_cell(first, f'key = "{API_KEY}"\nimport ctypes\nctypes.string_at(0)', cell_id="crash",
               wait=False)
    wait_dead(first)

    start_kernel()

    assert collector.wait_for("events", 1, WAIT)
    [death] = deaths(collector)
    assert death.message.startswith("segmentation fault")
    for body in event_bodies(collector):
        assert_no_secret(body)
    body = death.event
    assert body["metaData"]["notebook"]["cellSource"].splitlines()[1] == 'key = "[REDACTED]"'
    cell_frame = body["exceptions"][0]["stacktrace"][-1]
    assert cell_frame["file"] == "cell-crash" and cell_frame["code"]["2"] == 'key = "[REDACTED]"'


# -- papermill: parameters and paths that are URLs with credentials ---------------------------


class _NotebookServer(BaseHTTPRequestHandler):
    """Serves the input notebook (GET) and takes the executed one (PUT), as a notebook store
    behind basic authentication would."""

    notebook: ClassVar[bytes] = b""
    written: ClassVar[dict[str, bytes]] = {}

    def do_GET(self) -> None:
        self._answer(200, self.notebook)

    def do_PUT(self) -> None:
        self.written[self.path] = self.rfile.read(int(self.headers["Content-Length"]))
        self._answer(200, b"{}")

    def _answer(self, status: int, body: bytes) -> None:
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def notebook_server(tmp_path: Path) -> Iterator[tuple[str, dict[str, bytes]]]:
    # The headless runs' notebook; that module skips where papermill or nbconvert is missing.
    from tests.test_kernel_headless import write_notebook

    notebook = write_notebook(tmp_path / "served" / "analysis.ipynb")
    handler = type("Handler", (_NotebookServer,), {"notebook": notebook.read_bytes(), "written": {}})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://ci:pw@127.0.0.1:{server.server_address[1]}", handler.written
    finally:
        server.shutdown()
        server.server_close()


def test_a_papermill_runs_urls_arrive_without_their_credentials(
    tmp_path: Path, collector: Any, notebook_server: tuple[str, dict[str, bytes]]
) -> None:
    from tests.test_kernel_headless import BIN, RUN_TIMEOUT

    served, written = notebook_server
    env = installed_env(tmp_path, collector, BUGSNAG_APP_VERSION="papermill-secrets")
    argv = [str(BIN / "papermill"), f"{served}/jobs/analysis.ipynb", f"{served}/out/analysis.ipynb",
            "-p", "threshold", "5", "-p", "db", "postgresql://admin:pw@db/x",
            "-p", "url", "https://ci:pw@host/"]

    done = subprocess.run(argv, cwd=tmp_path, env=env, capture_output=True, text=True,
                          timeout=RUN_TIMEOUT)

    assert "PapermillExecutionError" in done.stderr, done.stderr[-3000:]  # the failing cell
    assert "/out/analysis.ipynb" in written  # papermill wrote its output through the URL
    assert collector.wait_for("events", 1, WAIT)
    [request] = collector.store.requests("events")
    # The passwords as they stand in a URL ("pw" alone can occur in a random name, the kernel's id).
    assert ":pw@" not in request.body
    [event] = [json.loads(request.body)["events"][0]]
    tab = event["metaData"]["run"]
    address = served.replace("ci:pw@", "***@")
    assert (tab["runner"], tab["inputPath"], tab["outputPath"]) == (
        "papermill", f"{address}/jobs/analysis.ipynb", f"{address}/out/analysis.ipynb")
    # As the command line gives them: the output notebook, which has them typed, is not local.
    assert tab["parameters"] == {"threshold": "5", "db": "postgresql://***@db/x", "url": "https://***@host/"}
    assert event["exceptions"][0]["message"] == "10 is over 5"
