"""A collector that can be told to misbehave, so that delivery is tested against a real server:
scripted statuses, going down and coming back on the same port, hanging; it also counts its
connections and waits for what arrives."""

from __future__ import annotations

import contextlib
import os
import socket
import threading
from collections.abc import Mapping
from typing import Literal, cast

from bugsnag_ipython.collector.server import Collector, Handler
from bugsnag_ipython.collector.store import Kind
from tests.waits import eventually

Endpoint = Literal["notify", "sessions", "builds"]
ScriptedResponse = int | tuple[int, Mapping[str, str]]
_ENDPOINTS: Mapping[Kind, Endpoint] = {"events": "notify", "sessions": "sessions", "builds": "builds"}
# The reasons recorded for requests the collector answered as scripted, or held unanswered.
SCRIPTED = "Scripted response."
HELD = "Held unanswered: the collector hung."


class ScriptedHandler(Handler):
    """Answers as the collector is scripted to, or holds requests while it hangs; counts and
    tracks its connection so that `go_down()` and `stop()` can close it."""

    def handle(self) -> None:
        collector = self._collector()
        with collector._lock:
            collector.connection_count += 1
            collector.connections.add(self.connection)
        try:
            super().handle()
        finally:
            with collector._lock:
                collector.connections.discard(self.connection)

    def do_GET(self) -> None:
        gate = self._collector().hang_gate
        if gate is None:
            super().do_GET()
        else:
            self._hold(gate)

    def receive(self, kind: Kind, headers: dict[str, str], body: bytes) -> None:
        collector = self._collector()
        gate = collector.hang_gate
        if gate is not None:
            # Recorded so a test can see the request arrived although it got no answer.
            collector.store.record(kind, 0, HELD, headers, body)
            self._hold(gate)
            return
        scripted = collector.next_scripted(_ENDPOINTS[kind])
        if scripted is None:
            super().receive(kind, headers, body)
            return
        status, extra = (scripted, {}) if isinstance(scripted, int) else scripted
        collector.store.record(kind, status, SCRIPTED, headers, body)
        self.reply(status, {"status": "ok"} if status < 400 else {"error": SCRIPTED}, extra)

    def _collector(self) -> ScriptedCollector:
        return cast(ScriptedCollector, self.server)

    def _hold(self, gate: threading.Event) -> None:
        """Block until the hang ends, then drop the connection without answering."""
        gate.wait()
        self.close_connection = True


class ScriptedCollector(Collector):
    """The collector, with fault injection and a count of the connections it accepted."""

    handler = ScriptedHandler

    def __init__(
        self, store_path: str | os.PathLike[str], host: str = "127.0.0.1", port: int = 0
    ) -> None:
        self.connection_count = 0
        self.connections: set[socket.socket] = set()
        self.hang_gate: threading.Event | None = None
        self._lock = threading.Lock()
        self._script: list[tuple[Endpoint | None, ScriptedResponse]] = []
        self._down = False
        self._stopped = False
        super().__init__(store_path, host, port)

    def script(self, endpoint: Endpoint | None, *responses: ScriptedResponse) -> None:
        """Answer the next requests with these responses, before any validation.

        Each response is a status (503) or a status and headers ((429, {"Retry-After": "2"})).
        With `endpoint` None they answer the next requests on any endpoint. Requests take
        the oldest response queued for their endpoint or for both; once the queue is empty
        the collector checks and stores requests normally again.
        """
        with self._lock:
            self._script.extend((endpoint, response) for response in responses)

    def next_scripted(self, endpoint: Endpoint) -> ScriptedResponse | None:
        with self._lock:
            for index, (wanted, response) in enumerate(self._script):
                if wanted is None or wanted == endpoint:
                    del self._script[index]
                    return response
        return None

    def go_down(self) -> None:
        """Stop listening and close every open connection: connections are refused. The port
        stays this collector's meanwhile (its socket, no longer listening, stays bound), so
        that another process's socket cannot take it before `come_back()`."""
        if self._thread is not None:
            self.shutdown()
            self._thread.join()
            self._thread = None
        self.socket.shutdown(socket.SHUT_RD)
        self._down = True
        self._drop_connections()

    def come_back(self) -> None:
        """Listen again, on the same port, after `go_down()`."""
        if self._stopped:
            raise RuntimeError("this collector has been stopped")
        if self._down:
            self.socket.close()
            self.socket = socket.socket(self.address_family, self.socket_type)
            self.server_bind()
            self.server_activate()
            self._down = False
            self.start()

    def hang(self) -> None:
        """Accept connections and read requests, but answer none until `unhang()`.

        Requests held this way are recorded with status 0.
        """
        with self._lock:
            if self.hang_gate is None:
                self.hang_gate = threading.Event()

    def unhang(self) -> None:
        """Answer normally again; requests held by `hang()` are dropped unanswered."""
        with self._lock:
            gate, self.hang_gate = self.hang_gate, None
        if gate is not None:
            gate.set()

    def wait_for(self, kind: Kind, count: int, timeout: float = 5.0) -> bool:
        """Whether at least `count` sessions, events or builds are stored within `timeout` seconds."""
        return eventually(lambda: self.store.count(kind) >= count, timeout) is not None

    def stop(self) -> None:
        """Stop as the collector does, and close every connection, held ones included."""
        self._stopped = True
        self.unhang()
        super().stop()
        self._drop_connections()

    def _drop_connections(self) -> None:
        with self._lock:
            connections = list(self.connections)
        for connection in connections:
            with contextlib.suppress(OSError):  # already closed by the client
                connection.shutdown(socket.SHUT_RDWR)
