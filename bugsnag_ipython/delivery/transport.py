"""Sending one payload: the `Envelope`, what an attempt came to, and the HTTP transport.

`requests` is imported by `HttpTransport()` itself, which only the delivery worker constructs,
so loading the extension never pays for it.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal, Protocol

from ..core.config import without_credentials
from ..report import payloads

Kind = Literal["session", "event"]
KINDS: tuple[Kind, ...] = ("session", "event")
CONNECT_TIMEOUT = 3.05  # a little over a multiple of 3 s, the TCP retransmission window
READ_TIMEOUT = 10.0
MAX_RETRY_AFTER = 24 * 3600.0  # a longer Retry-After is taken as a server's mistake


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
    """What one attempt came to: a 2xx is delivered; a 4xx other than 408 and 429 is refused
    for good (dropped, said); 408, 429, a 5xx or no response at all is tried again later."""

    status: int | None  # None: no HTTP response at all
    error: str | None = None  # in plain words, when there was no response
    retry_after: float | None = None  # seconds, from a Retry-After header

    @property
    def delivered(self) -> bool:
        return self.status is not None and 200 <= self.status < 300

    @property
    def undeliverable(self) -> bool:
        """Refused for good: sending it again would be refused again."""
        return self.status is not None and 400 <= self.status < 500 and self.status not in (408, 429)

    @property
    def retryable(self) -> bool:
        return not self.delivered and not self.undeliverable


class Transport(Protocol):
    """Sends one envelope and says what happened; never raises for a failed send."""

    def send(self, envelope: Envelope) -> Outcome: ...
    def close(self) -> None: ...


class HttpTransport:
    """POSTs over one `requests.Session`, so consecutive sends reuse one keep-alive connection.

    Per endpoint, the request is prepared once (URL parsing, the session's headers) and the
    environment's settings (proxies, CA bundle) are read once; each send copies the prepared
    request, sets this attempt's headers and body and hands it to the session's adapter.
    `Session.post` would redo all of that per payload: two thirds of the sender's time.
    """

    def __init__(self) -> None:
        import netrc  # noqa: F401  (requests imports it at the first request: do it here, under the fork guard)

        import requests  # lazily: the worker thread pays for the import, not the load

        self._requests = requests
        self._session = requests.Session()
        self._prepared: dict[str, tuple[Any, Any, dict[str, Any]]] = {}

    def _endpoint(self, url: str) -> tuple[Any, Any, dict[str, Any]]:
        if url not in self._prepared:
            session = self._session
            template = session.prepare_request(self._requests.Request("POST", url, data=b""))
            settings = dict(session.merge_environment_settings(url, {}, False, None, None))
            self._prepared[url] = (template, session.get_adapter(url), settings)
        return self._prepared[url]

    def send(self, envelope: Envelope) -> Outcome:
        # Sent-At and the digest are made per attempt, over the exact bytes of this attempt.
        sent_headers = payloads.headers(
            envelope.api_key, envelope.payload_version, envelope.body, time.time()
        )
        try:
            template, adapter, settings = self._endpoint(envelope.url)
            request = template.copy()
            request.headers.update(sent_headers)
            request.body = envelope.body
            request.headers["Content-Length"] = str(len(envelope.body))
            response = adapter.send(
                request, timeout=(CONNECT_TIMEOUT, READ_TIMEOUT), **settings
            )
            # Read the (small) answer to the end, as Session.send does, so that the connection
            # goes back to the pool for the next payload instead of being closed.
            response.content  # noqa: B018
        except self._requests.RequestException as error:
            return Outcome(None, error=plain_error(error))
        response.close()
        return Outcome(response.status_code, retry_after=retry_after(response.headers))

    def close(self) -> None:
        self._session.close()


class NullTransport:
    """Accepts everything without sending: for benchmarks of everything but the network."""

    def __init__(self) -> None:
        self.sent = 0

    def send(self, envelope: Envelope) -> Outcome:
        self.sent += 1
        return Outcome(202)

    def close(self) -> None:
        pass


def plain_error(error: Exception) -> str:
    """A failed request in words a notebook user can act on."""
    name = type(error).__name__
    text = without_credentials(str(error))  # requests' messages may hold the URL
    if "Timeout" in name:
        return "the endpoint did not answer in time"
    if "SSL" in name:
        return f"a TLS error ({text})"
    if "Connection" in name:
        return "could not connect to the endpoint"
    return f"{name}: {text}"


def retry_after(response_headers: Mapping[str, str]) -> float | None:
    """Seconds to wait from a Retry-After header: a number of seconds or an HTTP date."""
    value = response_headers.get("Retry-After")
    if value is None:
        return None
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        from email.utils import parsedate_to_datetime  # rare, and email is slow to import

        try:
            seconds = parsedate_to_datetime(value).timestamp() - time.time()
        except (TypeError, ValueError, IndexError):
            return None
    return min(MAX_RETRY_AFTER, max(0.0, seconds))
