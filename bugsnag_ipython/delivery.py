"""Delivery: one daemon worker that sends payloads over one keep-alive HTTP session.

A cell only ever enqueues; the worker does the network. `requests` is imported by the worker,
not at load, so loading the extension stays cheap.
"""

from __future__ import annotations

import logging
import os
import queue
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

from . import payloads

log = logging.getLogger("bugsnag_ipython")

Kind = Literal["session", "event"]
CONNECT_TIMEOUT = 3.05
READ_TIMEOUT = 10.0


@dataclass(frozen=True)
class Envelope:
    """One payload, bound to the key and URL it was made for."""

    kind: Kind
    url: str
    api_key: str
    body: bytes
    created_at: float

    @property
    def payload_version(self) -> str:
        return (
            payloads.SESSION_PAYLOAD_VERSION
            if self.kind == "session"
            else payloads.EVENT_PAYLOAD_VERSION
        )


@dataclass(frozen=True)
class Outcome:
    """What one attempt came to: delivered, retry later, or drop (with the reason)."""

    status: int | None
    error: str | None = None
    retry_after: float | None = None

    @property
    def delivered(self) -> bool:
        return self.status is not None and 200 <= self.status < 300

    @property
    def undeliverable(self) -> bool:
        return self.status is not None and 400 <= self.status < 500 and self.status not in (408, 429)


class Transport(Protocol):
    def send(self, envelope: Envelope) -> Outcome: ...
    def close(self) -> None: ...


class HttpTransport:
    """POSTs over one `requests.Session`, so consecutive sends reuse one connection."""

    def __init__(self) -> None:
        import requests  # lazily: the worker thread pays for the import, not the load

        self._requests = requests
        self._session = requests.Session()

    def send(self, envelope: Envelope) -> Outcome:
        sent_headers = payloads.headers(
            envelope.api_key, envelope.payload_version, envelope.body, time.time()
        )
        try:
            response = self._session.post(
                envelope.url,
                data=envelope.body,
                headers=sent_headers,
                timeout=(CONNECT_TIMEOUT, READ_TIMEOUT),
            )
        except self._requests.RequestException as error:
            return Outcome(None, error=_plain_error(error))
        response.close()
        return Outcome(response.status_code, retry_after=_retry_after(response.headers))

    def close(self) -> None:
        self._session.close()


def _plain_error(error: Exception) -> str:
    name = type(error).__name__
    if "Timeout" in name:
        return "the endpoint did not answer in time"
    if "Connection" in name:
        return "could not connect to the endpoint"
    return f"{name}: {error}"


def _retry_after(response_headers: Any) -> float | None:
    value = response_headers.get("Retry-After")
    try:
        return max(0.0, float(value)) if value is not None else None
    except ValueError:
        return None


@dataclass
class DeliveryStats:
    delivered: int = 0
    retried: int = 0
    dropped: Counter[str] = field(default_factory=Counter)
    last_error: str | None = None


StateListener = Callable[[], None]


class Delivery:
    """A bounded queue drained by one daemon worker thread, started when first needed.

    Fork-safe: a child process (multiprocessing from a notebook) finds the worker belongs to
    another pid and starts its own.
    """

    def __init__(
        self,
        transport_factory: Callable[[], Transport] = HttpTransport,
        *,
        max_queued: int = 10000,
    ) -> None:
        self._transport_factory = transport_factory
        self._max_queued = max_queued
        self._lock = threading.Lock()
        self._idle = threading.Condition(self._lock)
        self._queue: queue.SimpleQueue[Envelope | None] = queue.SimpleQueue()
        self._pending = 0
        self._worker: threading.Thread | None = None
        self._pid = os.getpid()
        self._closed = False
        self.stats = DeliveryStats()
        self.listeners: list[StateListener] = []

    @property
    def queued(self) -> int:
        return self._pending

    def submit(self, envelope: Envelope) -> None:
        """Hand a payload over; never blocks on the network."""
        with self._lock:
            self._ensure_worker_locked()
            if self._pending >= self._max_queued:
                self.stats.dropped["queue full"] += 1
                self._changed()
                return
            self._pending += 1
        self._queue.put(envelope)
        self._changed()

    def flush(self, timeout: float = 5.0) -> bool:
        """Wait until everything handed over was attempted; True when nothing is pending."""
        deadline = time.monotonic() + max(0.0, timeout)
        with self._idle:
            while self._pending:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                self._idle.wait(remaining)
        return True

    def close(self, timeout: float = 1.5) -> bool:
        done = self.flush(timeout)
        self._closed = True
        self._queue.put(None)
        return done

    def _ensure_worker_locked(self) -> None:
        if self._pid != os.getpid():
            # After fork only this thread survives: a fresh lock, queue and worker.
            self._reset_after_fork()
        if self._worker is None or not self._worker.is_alive():
            self._worker = threading.Thread(
                target=self._run, name="bugsnag-delivery", daemon=True
            )
            self._worker.start()

    def _reset_after_fork(self) -> None:
        self._pid = os.getpid()
        self._lock = threading.Lock()
        self._idle = threading.Condition(self._lock)
        self._queue = queue.SimpleQueue()
        self._pending = 0
        self._worker = None

    def _run(self) -> None:
        transport: Transport | None = None
        while True:
            envelope = self._queue.get()
            if envelope is None:
                break
            try:
                if transport is None:
                    transport = self._transport_factory()
                self._record(envelope, transport.send(envelope))
            except Exception as error:  # never let the worker die: count and go on
                self._record(envelope, Outcome(None, error=f"{type(error).__name__}: {error}"))
            with self._idle:
                self._pending -= 1
                self._idle.notify_all()
            self._changed()
        if transport is not None:
            transport.close()

    def _record(self, envelope: Envelope, outcome: Outcome) -> None:
        if outcome.delivered:
            self.stats.delivered += 1
            return
        reason = (
            f"HTTP {outcome.status}" if outcome.status is not None else (outcome.error or "error")
        )
        self.stats.last_error = f"{envelope.kind} not delivered: {reason}"
        self.stats.dropped[reason] += 1
        log.warning("A %s was not delivered to %s: %s.", envelope.kind, envelope.url, reason)

    def _changed(self) -> None:
        for listener in list(self.listeners):
            try:
                listener()
            except Exception:
                log.debug("state listener failed", exc_info=True)
