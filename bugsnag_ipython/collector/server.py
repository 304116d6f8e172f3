"""A local HTTP receiver that speaks BugSnag's sessions, notify and build endpoints.

It checks each request as BugSnag would, records it in a SQLite `Store`, and can be told
to misbehave (scripted statuses, going down, hanging) so delivery code can be tested
against a real server.
"""

from __future__ import annotations

import contextlib
import os
import socket
import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from types import TracebackType
from typing import Any, Literal

from .handler import Server
from .records import Kind
from .store import Store

Endpoint = Literal["notify", "sessions", "builds"]
ScriptedResponse = int | tuple[int, Mapping[str, str]]



class Collector:
    """A BugSnag-compatible receiver on `host:port` (port 0 picks a free one).

    The socket is bound on construction, so `url` is known before `start()`.
    """

    def __init__(
        self,
        store_path: str | os.PathLike[str],
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        verbose: bool = False,
    ) -> None:
        self.verbose = verbose
        self._store = Store(store_path)
        self._host = host
        self._lock = threading.Lock()
        self._stored = threading.Condition()
        self._script: list[tuple[Endpoint | None, ScriptedResponse]] = []
        self._hang_gate: threading.Event | None = None
        self._connections: set[socket.socket] = set()
        self._connection_count = 0
        self._started = False
        self._stopped = False
        self._server: Server | None = None
        self._held_port: socket.socket | None = None  # while down: bound, not listening
        self._thread: threading.Thread | None = None
        try:
            self._server = Server((host, port), self)
        except OSError:
            self._store.close()
            raise
        self._port: int = self._server.server_address[1]

    # -- addresses ---------------------------------------------------------------------

    @property
    def port(self) -> int:
        return self._port

    @property
    def url(self) -> str:
        host = self._host
        if host in ("", "0.0.0.0"):
            host = "127.0.0.1"
        elif host == "::":
            host = "::1"
        if ":" in host:
            host = f"[{host}]"
        return f"http://{host}:{self._port}"

    @property
    def notify_url(self) -> str:
        return self.url + "/notify"

    @property
    def sessions_url(self) -> str:
        return self.url + "/sessions"

    @property
    def builds_url(self) -> str:
        return self.url + "/builds"

    @property
    def store(self) -> Store:
        return self._store

    @property
    def connection_count(self) -> int:
        """How many TCP connections have been accepted since construction."""
        with self._lock:
            return self._connection_count

    # -- lifecycle ---------------------------------------------------------------------

    def start(self) -> Collector:
        """Serve in a daemon thread. Returns self."""
        with self._lock:
            if self._stopped:
                raise RuntimeError("this collector has been stopped")
            if self._started:
                return self
            self._started = True
            self._serve()
        return self

    def stop(self) -> None:
        """Stop serving and close every connection. The store stays readable."""
        with self._lock:
            if self._stopped:
                return
            self._stopped = True
            self._close_listener()
            gate, self._hang_gate = self._hang_gate, None
        if gate is not None:
            gate.set()
        self._drop_connections()

    def __enter__(self) -> Collector:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    # -- fault injection ---------------------------------------------------------------

    def script(self, endpoint: Endpoint | None, *responses: ScriptedResponse) -> None:
        """Answer the next requests with these responses, before any validation.

        Each response is a status (503) or a status and headers ((429, {"Retry-After": "2"})).
        With `endpoint` None they answer the next requests on any endpoint. Requests take
        the oldest response queued for their endpoint or for both; once the queue is empty
        the collector checks and stores requests normally again.
        """
        with self._lock:
            self._script.extend((endpoint, response) for response in responses)

    def go_down(self) -> None:
        """Stop listening and close every open connection: connections are refused. The port
        stays this collector's meanwhile (its socket, no longer listening, stays bound), so
        that another process's socket cannot take it before `come_back()`."""
        with self._lock:
            self._close_listener(hold_port=True)
        self._drop_connections()

    def come_back(self) -> None:
        """Listen again, on the same port, after `go_down()`."""
        with self._lock:
            if self._stopped:
                raise RuntimeError("this collector has been stopped")
            if self._server is None:
                self._release_port()
                self._server = Server((self._host, self._port), self)
                if self._started:
                    self._serve()

    def hang(self) -> None:
        """Accept connections and read requests, but answer none until `unhang()`.

        Requests held this way are recorded with status 0.
        """
        with self._lock:
            if self._hang_gate is None:
                self._hang_gate = threading.Event()

    def unhang(self) -> None:
        """Answer normally again; requests held by `hang()` are dropped unanswered."""
        with self._lock:
            gate, self._hang_gate = self._hang_gate, None
        if gate is not None:
            gate.set()

    def wait_for(self, kind: Kind, count: int, timeout: float = 5.0) -> bool:
        """Block until at least `count` sessions, events or builds are stored; False on timeout."""
        with self._stored:
            return self._stored.wait_for(lambda: self._store.count(kind) >= count, timeout)

    # -- used by the request handler ---------------------------------------------------

    def next_scripted(self, endpoint: Endpoint) -> ScriptedResponse | None:
        with self._lock:
            for index, (wanted, response) in enumerate(self._script):
                if wanted is None or wanted == endpoint:
                    del self._script[index]
                    return response
        return None

    def current_hang_gate(self) -> threading.Event | None:
        with self._lock:
            return self._hang_gate

    def record(
        self,
        kind: Kind,
        status: int,
        reason: str,
        headers: Mapping[str, str],
        body: bytes,
        payload: Mapping[str, Any] | None = None,
    ) -> None:
        self._store.record(kind, status, reason, headers, body, payload)
        if payload is not None:
            with self._stored:
                self._stored.notify_all()

    @contextmanager
    def tracked(self, connection: socket.socket) -> Iterator[None]:
        with self._lock:
            self._connections.add(connection)
            self._connection_count += 1
        try:
            yield
        finally:
            with self._lock:
                self._connections.discard(connection)

    # -- internals (called with self._lock held) ---------------------------------------

    def _serve(self) -> None:
        server = self._server
        assert server is not None
        self._thread = threading.Thread(
            target=server.serve_forever,
            kwargs={"poll_interval": 0.05},
            name=f"bugsnag-collector-{self._port}",
            daemon=True,
        )
        self._thread.start()

    def _close_listener(self, *, hold_port: bool = False) -> None:
        server, self._server = self._server, None
        thread, self._thread = self._thread, None
        if server is None:
            self._release_port()
            return
        if thread is not None:
            server.shutdown()  # waits for the serve loop only, never for handlers
            thread.join()
        if hold_port:
            # Out of the listening state (connections are refused), but still bound.
            server.socket.shutdown(socket.SHUT_RD)
            self._held_port = server.socket
        else:
            server.server_close()

    def _release_port(self) -> None:
        held, self._held_port = self._held_port, None
        if held is not None:
            held.close()

    def _drop_connections(self) -> None:
        with self._lock:
            connections = list(self._connections)
        for connection in connections:
            with contextlib.suppress(OSError):  # already closed by the client
                connection.shutdown(socket.SHUT_RDWR)
