"""The collector's HTTP side: each request checked as BugSnag would check it, answered as the
collector is scripted to answer, and recorded in its store (server.py runs it).

`/notify`, `/sessions` and `/builds` each take their own payloads. `/` takes all three, told
apart by shape, so that a client of build.bugsnag.com (or of notify.bugsnag.com or
sessions.bugsnag.com, which also take payloads at their root) can point at it unchanged."""

from __future__ import annotations

import json
import socket
import socketserver
import threading
from collections.abc import Mapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any

from .builds import check_build, kind_at_root
from .page import report_page
from .records import Kind
from .report import build_report
from .validation import Verdict, check_request

if TYPE_CHECKING:
    from .server import Collector, Endpoint

# Bodies above BugSnag's limit are still read (and refused with 400) so the connection stays
# usable; above this much we answer without reading and close the connection.
_MAX_READ_BYTES = 16 * 1024 * 1024
_ENDPOINT_KINDS: Mapping[str, tuple[Endpoint, Kind]] = {
    "/notify": ("notify", "events"),
    "/sessions": ("sessions", "sessions"),
    "/builds": ("builds", "builds"),
}
_ROOT_ROUTES: Mapping[Kind, tuple[Endpoint, Kind]] = {
    kind: (endpoint, kind) for endpoint, kind in _ENDPOINT_KINDS.values()
}


def _route(path: str, body: bytes) -> tuple[Endpoint, Kind] | None:
    """The endpoint a POST is for; at `/`, the one whose payload the body is shaped like."""
    path = path.split("?", 1)[0].rstrip("/")
    return _ENDPOINT_KINDS.get(path) if path else _ROOT_ROUTES[kind_at_root(body)]


class Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, address: tuple[str, int], collector: Collector) -> None:
        self.collector = collector
        if ":" in address[0]:
            self.address_family = socket.AF_INET6
        super().__init__(address, _Handler)

    def server_bind(self) -> None:
        # HTTPServer.server_bind does a reverse DNS lookup of the host; skip it.
        socketserver.TCPServer.server_bind(self)
        host, port = self.server_address[:2]
        self.server_name = str(host)
        self.server_port = int(port)

    def handle_error(self, request: Any, client_address: Any) -> None:
        if self.collector.verbose:
            super().handle_error(request, client_address)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # Headers and body go out in separate writes; with Nagle's algorithm on, a keep-alive
    # client's delayed ACK then stalls every response by about 40 ms.
    disable_nagle_algorithm = True
    server_version = "BugsnagCollector/0.1"
    server: Server

    def handle(self) -> None:
        with self.server.collector.tracked(self.connection):
            super().handle()

    def log_message(self, format: str, *args: Any) -> None:
        if self.server.collector.verbose:
            super().log_message(format, *args)

    def do_GET(self) -> None:
        self._discard_body()
        gate = self.server.collector.current_hang_gate()
        if gate is not None:
            self._hold(gate)
            return
        path = self.path.split("?", 1)[0]
        if path == "/health":
            self._reply(200, {"status": "ok"})
        elif path == "/":
            self._reply_page()
        else:
            self._reply(404, {"error": "Not found."})

    def _reply_page(self) -> None:
        """The stability report as a web page, built from the store as it is now."""
        body = report_page(build_report(self.server.collector.store)).encode("utf-8")
        self.send_response(200)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        self.end_headers()
        self.wfile.write(body)

    def do_POST(self) -> None:
        collector = self.server.collector
        body = self._read_body()
        if body is None:
            return
        route = _route(self.path, body)
        headers = dict(self.headers.items())
        gate = collector.current_hang_gate()
        if gate is not None:
            if route is not None:
                # Recorded so a test can see the request arrived although it got no answer.
                collector.record(
                    route[1], 0, "Held unanswered: the collector hung.", headers, body
                )
            self._hold(gate)
            return
        if route is None:
            self._reply(404, {"error": "Not found."})
            return
        endpoint, kind = route

        scripted = collector.next_scripted(endpoint)
        if scripted is not None:
            status, extra = (scripted, {}) if isinstance(scripted, int) else scripted
            collector.record(kind, status, "Scripted response.", headers, body)
            answer = {"status": "ok"} if status < 400 else {"error": "Scripted response."}
            self._reply(status, answer, extra)
            return

        try:
            verdict = check_build(headers, body) if kind == "builds" else check_request(kind, headers, body)
            collector.record(kind, verdict.status, verdict.reason, headers, body, verdict.payload)
        except RecursionError:  # JSON nested deeper than the parser (or the store) goes
            verdict = Verdict(400, "The body is not valid JSON: it is nested too deeply.")
            collector.record(kind, verdict.status, verdict.reason, headers, body)
        if kind == "builds":
            # The Build API's answers: bugsnag-build-reporter takes 200 as success, and shows
            # the `errors` of a 400.
            if verdict.accepted:
                self._reply(200, {"status": "ok", "warnings": []})
            else:
                self._reply(verdict.status, {"error": verdict.reason, "errors": [verdict.reason]})
        elif verdict.accepted:
            self._reply(202, {"status": "ok"})
        else:
            self._reply(verdict.status, {"error": verdict.reason})

    def _hold(self, gate: threading.Event) -> None:
        """Block until the hang ends, then drop the connection without answering."""
        gate.wait()
        self.close_connection = True

    def _read_body(self) -> bytes | None:
        """The request body, or None after answering a request whose length is unusable."""
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            return self._read_chunked()
        length_text = self.headers.get("Content-Length", "0")
        try:
            length = int(length_text)
        except ValueError:
            length = -1
        if length < 0:
            self._reply(400, {"error": "The Content-Length header is not valid."}, close=True)
            return None
        if length > _MAX_READ_BYTES:
            self._reply(400, {"error": "Payload too large."}, close=True)
            return None
        return self.rfile.read(length)

    def _read_chunked(self) -> bytes | None:
        chunks: list[bytes] = []
        total = 0
        while True:
            size_line = self.rfile.readline(1024).split(b";", 1)[0].strip()
            try:
                size = int(size_line, 16)
            except ValueError:
                self._reply(400, {"error": "The chunked body is not valid."}, close=True)
                return None
            if size == 0:
                while self.rfile.readline(1024) not in (b"\r\n", b"\n", b""):
                    pass  # trailers
                return b"".join(chunks)
            total += size
            if total > _MAX_READ_BYTES:
                self._reply(400, {"error": "Payload too large."}, close=True)
                return None
            chunks.append(self.rfile.read(size))
            self.rfile.readline(1024)

    def _discard_body(self) -> None:
        length = self.headers.get("Content-Length", "0")
        if length.isdigit() and int(length) <= _MAX_READ_BYTES:
            self.rfile.read(int(length))
        else:
            self.close_connection = True  # cannot find where the next request starts

    def _reply(
        self,
        status: int,
        answer: Mapping[str, Any],
        headers: Mapping[str, str] | None = None,
        *,
        close: bool = False,
    ) -> None:
        body = json.dumps(answer).encode("utf-8")
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        if close:
            self.send_header("Connection", "close")
            self.close_connection = True
        self.end_headers()
        self.wfile.write(body)
