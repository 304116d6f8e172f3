"""When to try an endpoint again: one `Backoff` per endpoint, not per payload, so that a hundred
stored payloads wait behind one timer and the first success lets them all go."""

from __future__ import annotations

import contextlib
import os
import random
from collections.abc import Callable, Mapping
from dataclasses import dataclass

# For tests: retries that wait milliseconds. A server's Retry-After is honoured whatever these say.
BASE_VARIABLE = "BUGSNAG_RETRY_BASE_SECONDS"
MAX_VARIABLE = "BUGSNAG_RETRY_MAX_SECONDS"


@dataclass(frozen=True)
class RetryPolicy:
    """Exponential backoff with jitter: about base, 2 base, 4 base... up to `maximum`."""

    base: float = 2.0
    maximum: float = 300.0

    @classmethod
    def from_environment(cls, env: Mapping[str, str] = os.environ) -> RetryPolicy:
        base, maximum = cls.base, cls.maximum
        with contextlib.suppress(ValueError):  # a mistyped test knob must not break delivery
            base = max(0.0, float(env.get(BASE_VARIABLE, base)))
            maximum = max(base, float(env.get(MAX_VARIABLE, max(maximum, base))))
        return cls(base, maximum)

    def delay(self, failures: int, jitter: float) -> float:
        """The wait after `failures` in a row; `jitter` in [0, 1) spreads kernels that failed together."""
        ceiling = min(self.maximum, self.base * 2.0 ** min(max(failures - 1, 0), 30))
        return ceiling * (0.5 + 0.5 * jitter)


class Backoff:
    """The retry timer of one endpoint, on the delivery's monotonic clock."""

    def __init__(self, policy: RetryPolicy, clock: Callable[[], float]) -> None:
        self._policy = policy
        self._clock = clock
        self.failures = 0
        self.next_attempt = 0.0  # when the endpoint may be tried again
        self.imposed_until = 0.0  # a Retry-After: not even flush() tries before this

    def wait(self) -> float:
        """Seconds until the endpoint may be tried again (0 when it may now)."""
        return max(0.0, self.next_attempt - self._clock())

    def succeeded(self) -> None:
        self.failures = 0
        self.next_attempt = self.imposed_until = 0.0

    def failed(self, retry_after: float | None) -> float:
        """Count a failure; returns the seconds until the next attempt."""
        self.failures += 1
        now = self._clock()
        delay = self._policy.delay(self.failures, random.random()) if retry_after is None else retry_after
        if retry_after is not None:
            self.imposed_until = now + retry_after
        self.next_attempt = now + delay
        return delay

    def hold(self, seconds: float) -> None:
        """No attempt for `seconds` from now, unless hurried."""
        self.next_attempt = max(self.next_attempt, self._clock() + seconds)

    def hurry(self) -> None:
        """Try again now (flush), except before a time the server asked us to wait for."""
        self.next_attempt = min(self.next_attempt, max(self._clock(), self.imposed_until))
