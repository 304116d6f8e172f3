"""A local HTTP receiver for BugSnag's sessions, notify and build endpoints: each request is checked
as BugSnag checks it, recorded in a SQLite `Store`, and answered. `/` takes all three kinds, told
apart by shape, as BugSnag's hosts take payloads at their root."""

from __future__ import annotations

import json
import os
import socket
import threading
from collections.abc import Mapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from .page import report_page
from .report import build_report
from .store import Kind, Store
from .validation import Verdict, check_request, parse_json

# Bodies above BugSnag's limit are still read (and refused with 400) so the connection stays
# usable; above this much we answer without reading and close the connection.
_MAX_READ_BYTES = 16 * 1024 * 1024
_KINDS: Mapping[str, Kind] = {"/notify": "events", "/sessions": "sessions", "/builds": "builds"}


def _route(path: str, body: bytes) -> Kind | None:
    """A POST's kind: its endpoint's; at `/`, a build unless the body carries events or sessions."""
    path = path.split("?", 1)[0].rstrip("/")
    if path:
        return _KINDS.get(path)
    parsed = parse_json(body)
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
    server: Collector

    def log_message(self, format: str, *args: Any) -> None:
        if self.server.verbose:
            super().log_message(format, *args)

    def do_GET(self) -> None:
        if self._read_body() is None:  # read, so that the next request on the connection is found
            return
        path = self.path.split("?", 1)[0]
        if path == "/health":
            self.reply(200, {"status": "ok"})
        elif path == "/":  # the stability report as a web page, from the store as it is now
            page = report_page(build_report(self.server.store))
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
        store = self.server.store
        try:
            verdict = check_request(kind, headers, body)
            store.record(kind, verdict.status, verdict.reason, headers, body, verdict.payload)
        except RecursionError:  # JSON the parser takes, nested deeper than the store's encoder goes
            verdict = Verdict(400, "The body is not valid JSON: it is nested too deeply.")
            store.record(kind, verdict.status, verdict.reason, headers, body)
        answer: dict[str, Any] = {"status": "ok"} if verdict.accepted else {"error": verdict.reason}
        if kind == "builds":  # the Build API's answers, as bugsnag-build-reporter reads them
            answer.update({"warnings": []} if verdict.accepted else {"errors": [verdict.reason]})
        self.reply(verdict.status, answer)

    def reply(self, status: int, answer: Mapping[str, Any], headers: Mapping[str, str] | None = None) -> None:
        self._send(status, "application/json", json.dumps(answer), headers or {})

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
        """The body, or None after refusing one not read whole (and closing: the next start is unknown)."""
        length = self.headers.get("Content-Length", "0").strip()
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            body = self._read_chunked()
        elif not length.isdecimal():
            body = "The Content-Length header is not valid."
        elif int(length) > _MAX_READ_BYTES:
            body = "Payload too large."
        else:
            body = self.rfile.read(int(length))
        if isinstance(body, str):
            self.close_connection = True
            self.reply(400, {"error": body}, {"Connection": "close"})
            return None
        return body

    def _read_chunked(self) -> bytes | str:
        chunks: list[bytes] = []
        while True:
            try:
                size = int(self.rfile.readline(1024).split(b";", 1)[0].strip(), 16)
            except ValueError:
                return "The chunked body is not valid."
            if size == 0:
                while self.rfile.readline(1024) not in (b"\r\n", b"\n", b""):
                    pass  # trailers
                return b"".join(chunks)
            if sum(map(len, chunks)) + size > _MAX_READ_BYTES:
                return "Payload too large."
            chunks.append(self.rfile.read(size))
            self.rfile.readline(1024)


class Collector(ThreadingHTTPServer):
    """A BugSnag-compatible receiver on `host:port` (port 0 picks a free one), storing in the SQLite
    file `store_path`. The socket is bound on construction, so `url` is known before `start()`."""

    daemon_threads = True
    allow_reuse_address = True
    handler: type[Handler] = Handler  # what answers each connection's requests

    def __init__(self, store_path: str | os.PathLike[str], host: str = "127.0.0.1", port: int = 0, *,
                 verbose: bool = False) -> None:
        self.verbose = verbose
        self.store = Store(store_path)
        self._thread: threading.Thread | None = None
        if ":" in host:
            self.address_family = socket.AF_INET6
        try:
            super().__init__((host, port), self.handler)
        except OSError:
            self.store.close()
            raise
        self.port: int = self.server_address[1]
        shown = {"": "127.0.0.1", "0.0.0.0": "127.0.0.1", "::": "::1"}.get(host, host)  # where to connect
        self.url = f"http://[{shown}]:{self.port}" if ":" in shown else f"http://{shown}:{self.port}"
        self.notify_url = self.url + "/notify"
        self.sessions_url = self.url + "/sessions"
        self.builds_url = self.url + "/builds"

    def handle_error(self, request: Any, client_address: Any) -> None:
        if self.verbose:
            super().handle_error(request, client_address)

    def start(self) -> Collector:
        """Serve in a daemon thread (once). Returns self."""
        if self._thread is None:
            self._thread = threading.Thread(target=self.serve_forever, args=(0.05,), daemon=True)
            self._thread.start()
        return self

    def stop(self) -> None:
        """Stop listening, without waiting for requests in progress. The store stays readable."""
        if self._thread is not None:
            self.shutdown()
            self._thread.join()
            self._thread = None
        self.server_close()

    def __enter__(self) -> Collector:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()
