"""A local HTTP receiver that speaks BugSnag's sessions, notify and build endpoints.

Each request is checked as BugSnag would check it, recorded in a SQLite `Store`, and answered.
`/notify`, `/sessions` and `/builds` each take their own payloads. `/` takes all three, told
apart by shape, so that a client of build.bugsnag.com (or of notify.bugsnag.com or
sessions.bugsnag.com, which also take payloads at their root) can point at it unchanged.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import socketserver
import threading
from collections.abc import Iterator, Mapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from .page import report_page
from .records import Kind
from .report import build_report
from .store import Store
from .validation import Verdict, check_request, parse_json

# Bodies above BugSnag's limit are still read (and refused with 400) so the connection stays
# usable; above this much we answer without reading and close the connection.
_MAX_READ_BYTES = 16 * 1024 * 1024
_KINDS: Mapping[str, Kind] = {"/notify": "events", "/sessions": "sessions", "/builds": "builds"}


def _route(path: str, body: bytes) -> Kind | None:
    """What a POST carries: its endpoint's kind; at `/`, events or sessions when the body carries
    them, else a build (`apiKey` and `appVersion`), which is also what anything else is checked
    as, so that the answer says what a build lacks."""
    path = path.split("?", 1)[0].rstrip("/")
    if path:
        return _KINDS.get(path)
    try:
        parsed = parse_json(body)
    except RecursionError:
        return "builds"
    if isinstance(parsed, dict) and "events" in parsed:
        return "events"
    if isinstance(parsed, dict) and ("sessions" in parsed or "sessionCounts" in parsed):
        return "sessions"
    return "builds"


class Handler(BaseHTTPRequestHandler):
    """One connection's requests: each checked, recorded in the collector's store and answered."""

    protocol_version = "HTTP/1.1"
    # Headers and body go out in separate writes; with Nagle's algorithm on, a keep-alive
    # client's delayed ACK then stalls every response by about 40 ms.
    disable_nagle_algorithm = True
    server_version = "BugsnagCollector/0.1"
    server: _Server

    def handle(self) -> None:
        with self.server.collector.tracked(self.connection):
            super().handle()

    def log_message(self, format: str, *args: Any) -> None:
        if self.server.collector.verbose:
            super().log_message(format, *args)

    def do_GET(self) -> None:
        if self._read_body() is None:  # read, so that the next request on the connection is found
            return
        path = self.path.split("?", 1)[0]
        if path == "/health":
            self.reply(200, {"status": "ok"})
        elif path == "/":  # the stability report as a web page, from the store as it is now
            page = report_page(build_report(self.server.collector.store))
            self._send(200, "text/html; charset=utf-8", page, {"Cache-Control": "no-store"})
        else:
            self.reply(404, {"error": "Not found."})

    def do_POST(self) -> None:
        body = self._read_body()
        if body is None:
            return
        kind = _route(self.path, body)
        if kind is None:
            self.reply(404, {"error": "Not found."})
        else:
            self.receive(kind, dict(self.headers.items()), body)

    def receive(self, kind: Kind, headers: dict[str, str], body: bytes) -> None:
        """Check, record and answer one request to the `kind` endpoint."""
        store = self.server.collector.store
        try:
            verdict = check_request(kind, headers, body)
            store.record(kind, verdict.status, verdict.reason, headers, body, verdict.payload)
        except RecursionError:  # JSON nested deeper than the parser (or the store) goes
            verdict = Verdict(400, "The body is not valid JSON: it is nested too deeply.")
            store.record(kind, verdict.status, verdict.reason, headers, body)
        answer: dict[str, Any] = {"status": "ok"} if verdict.accepted else {"error": verdict.reason}
        if kind == "builds":  # the Build API's answers, as bugsnag-build-reporter reads them
            answer.update({"warnings": []} if verdict.accepted else {"errors": [verdict.reason]})
        self.reply(verdict.status, answer)

    def reply(self, status: int, answer: Mapping[str, Any], headers: Mapping[str, str] | None = None) -> None:
        """Answer with `answer` as JSON."""
        self._send(status, "application/json", json.dumps(answer), headers or {})

    def _refuse_unread(self, reason: str) -> None:
        """Answer 400 to a body not read whole, and close: where the next request starts is unknown."""
        self.close_connection = True
        self.reply(400, {"error": reason}, {"Connection": "close"})

    def _send(self, status: int, content_type: str, text: str, headers: Mapping[str, str]) -> None:
        body = text.encode("utf-8")
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for name, value in headers.items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(body)

    def _read_body(self) -> bytes | None:
        """The request body, or None after answering a request whose length is unusable."""
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            return self._read_chunked()
        try:
            length = int(self.headers.get("Content-Length", "0"))
        except ValueError:
            length = -1
        if length < 0:
            self._refuse_unread("The Content-Length header is not valid.")
            return None
        if length > _MAX_READ_BYTES:
            self._refuse_unread("Payload too large.")
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
                self._refuse_unread("The chunked body is not valid.")
                return None
            if size == 0:
                while self.rfile.readline(1024) not in (b"\r\n", b"\n", b""):
                    pass  # trailers
                return b"".join(chunks)
            total += size
            if total > _MAX_READ_BYTES:
                self._refuse_unread("Payload too large.")
                return None
            chunks.append(self.rfile.read(size))
            self.rfile.readline(1024)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, address: tuple[str, int], collector: Collector) -> None:
        self.collector = collector
        if ":" in address[0]:
            self.address_family = socket.AF_INET6
        super().__init__(address, collector.handler)

    def server_bind(self) -> None:
        # HTTPServer.server_bind does a reverse DNS lookup of the host; skip it.
        socketserver.TCPServer.server_bind(self)
        host, port = self.server_address[:2]
        self.server_name = str(host)
        self.server_port = int(port)

    def handle_error(self, request: Any, client_address: Any) -> None:
        if self.collector.verbose:
            super().handle_error(request, client_address)


class Collector:
    """A BugSnag-compatible receiver on `host:port` (port 0 picks a free one).

    The socket is bound on construction, so `url` is known before `start()`.
    """

    handler: type[Handler] = Handler  # what answers each connection's requests

    def __init__(
        self,
        store_path: str | os.PathLike[str],
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        verbose: bool = False,
    ) -> None:
        self.verbose = verbose
        self.store = Store(store_path)
        self._host = host
        self._lock = threading.Lock()
        self._connections: set[socket.socket] = set()
        self._started = False
        self._stopped = False
        self._thread: threading.Thread | None = None
        try:
            self._server: _Server | None = self._bind(port)
        except OSError:
            self.store.close()
            raise
        self.port: int = self._server.server_address[1]

    @property
    def url(self) -> str:
        host = {"": "127.0.0.1", "0.0.0.0": "127.0.0.1", "::": "::1"}.get(self._host, self._host)
        return f"http://[{host}]:{self.port}" if ":" in host else f"http://{host}:{self.port}"

    @property
    def notify_url(self) -> str:
        return self.url + "/notify"

    @property
    def sessions_url(self) -> str:
        return self.url + "/sessions"

    @property
    def builds_url(self) -> str:
        return self.url + "/builds"

    def start(self) -> Collector:
        """Serve in a daemon thread. Returns self."""
        with self._lock:
            if self._stopped:
                raise RuntimeError("this collector has been stopped")
            if not self._started:
                self._started = True
                self._serve()
        return self

    def stop(self) -> None:
        """Stop serving and close every connection. The store stays readable."""
        with self._lock:
            if self._stopped:
                return
            self._stopped = True
            server = self._stop_serving()
            if server is not None:
                server.server_close()
        self._drop_connections()

    def __enter__(self) -> Collector:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def wait_for(self, kind: Kind, count: int, timeout: float = 5.0) -> bool:
        """Block until at least `count` sessions, events or builds are stored; False on timeout."""
        return self.store.wait_for(kind, count, timeout)

    @contextlib.contextmanager
    def tracked(self, connection: socket.socket) -> Iterator[None]:
        """Hold `connection` among those `stop()` closes while it is open."""
        with self._lock:
            self._connections.add(connection)
        try:
            yield
        finally:
            with self._lock:
                self._connections.discard(connection)

    def _bind(self, port: int) -> _Server:
        return _Server((self._host, port), self)

    def _serve(self) -> None:
        """Run the serve loop in a thread; called with self._lock held, as is `_stop_serving`."""
        server = self._server
        assert server is not None
        self._thread = threading.Thread(
            target=server.serve_forever,
            kwargs={"poll_interval": 0.05},
            name=f"bugsnag-collector-{self.port}",
            daemon=True,
        )
        self._thread.start()

    def _stop_serving(self) -> _Server | None:
        """End the serve loop (never waiting for handlers); the listening socket stays open."""
        server, self._server = self._server, None
        thread, self._thread = self._thread, None
        if server is not None and thread is not None:
            server.shutdown()
            thread.join()
        return server

    def _drop_connections(self) -> None:
        with self._lock:
            connections = list(self._connections)
        for connection in connections:
            with contextlib.suppress(OSError):  # already closed by the client
                connection.shutdown(socket.SHUT_RDWR)
