"""A `Payload` (one session or event request, bound to its key and URL), the `Outcome` of one try,
and the `RetryPolicy` that says how long an endpoint that failed waits."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal, NamedTuple

from ..report import payloads

Kind = Literal["session", "event"]
KINDS: tuple[Kind, ...] = ("session", "event")
MAX_AGE_SECONDS = 60 * 24 * 3600.0  # stored payloads older than this are discarded


class Payload(NamedTuple):
    kind: Kind
    url: str
    api_key: str
    body: bytes
    created_at: float

    def headers(self, now: float) -> dict[str, str]:
        """The request's headers; Sent-At and the digest are made per attempt, over its bytes."""
        session = self.kind == "session"
        version = payloads.SESSION_PAYLOAD_VERSION if session else payloads.EVENT_PAYLOAD_VERSION
        return payloads.headers(self.api_key, version, self.body, now)


class Outcome(NamedTuple):
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
        return self.status is not None and 400 <= self.status < 500 and self.status not in (408, 429)

    @property
    def retryable(self) -> bool:
        return not self.delivered and not self.undeliverable


def refusal(status: int) -> tuple[str, str]:
    """For an undeliverable response: the drop reason (counted by status) and the sentence said once."""
    dropped = "Payloads refused for this reason are dropped."
    if status in (401, 403):
        return (f"API key rejected (HTTP {status})",
                f"BugSnag rejected the API key (HTTP {status}); check api_key. {dropped}")
    if status == 404:
        return ("endpoint not found (HTTP 404)", "The endpoint answered 404 Not Found; check notify_endpoint "
                f"and sessions_endpoint. {dropped}")
    if status in (400, 413):
        reason, why = ("payload refused", "invalid") if status == 400 else ("payload too large", "too large")
        return (f"{reason} (HTTP {status})",
                f"BugSnag refused a payload as {why} (HTTP {status}); it is dropped.")
    return (f"refused (HTTP {status})",
            f"BugSnag refused a payload with HTTP {status}; it is dropped, not retried.")


@dataclass(frozen=True)
class RetryPolicy:
    """Exponential backoff with jitter: about base, 2 base, 4 base... up to `maximum`."""

    base: float = 2.0
    maximum: float = 300.0

    @classmethod
    def from_environment(cls, env: Mapping[str, str] = os.environ) -> RetryPolicy:
        """For tests, retries that wait milliseconds; a server's Retry-After is honoured regardless."""
        try:
            base = max(0.0, float(env.get("BUGSNAG_RETRY_BASE_SECONDS", cls.base)))
            return cls(base, max(base, float(env.get("BUGSNAG_RETRY_MAX_SECONDS", max(cls.maximum, base)))))
        except ValueError:  # a mistyped test knob must not break delivery
            return cls()

    def delay(self, failures: int, jitter: float) -> float:
        """The wait after `failures` in a row; `jitter` in [0, 1) spreads kernels that failed together."""
        ceiling = min(self.maximum, self.base * 2.0 ** min(max(failures - 1, 0), 30))
        return ceiling * (0.5 + 0.5 * jitter)
