"""When to try an endpoint again: one `Backoff` per endpoint, not per payload. When an endpoint
is down, a hundred stored payloads wait behind one timer, and the first success lets them all go.
"""

from __future__ import annotations

import contextlib
import os
import random
from collections.abc import Callable, Mapping
from dataclasses import dataclass

# For tests only: retries that wait milliseconds instead of seconds. A Retry-After from the
# server is honoured exactly whatever these say.
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
        """The wait after `failures` consecutive failures; `jitter` in [0, 1) spreads kernels
        that failed together so they do not all come back at the same instant."""
        exponent = min(max(failures - 1, 0), 30)
        ceiling = min(self.maximum, self.base * 2.0**exponent)
        return ceiling * (0.5 + 0.5 * jitter)


class Backoff:
    """The retry timer of one endpoint, on an injected monotonic clock."""

    def __init__(
        self,
        policy: RetryPolicy,
        clock: Callable[[], float],
    ) -> None:
        self._policy = policy
        self._clock = clock
        self.failures = 0
        self.next_attempt = 0.0  # when the endpoint may be tried again
        self.imposed_until = 0.0  # a Retry-After: not even flush() tries before this

    def ready(self) -> bool:
        return self._clock() >= self.next_attempt

    def wait(self) -> float:
        """Seconds until the endpoint may be tried again (0 when it may now)."""
        return max(0.0, self.next_attempt - self._clock())

    def succeeded(self) -> None:
        self.failures = 0
        self.next_attempt = self.imposed_until = 0.0

    def failed(self, retry_after: float | None = None) -> float:
        """Count a failure; returns the seconds until the next attempt."""
        self.failures += 1
        now = self._clock()
        if retry_after is not None:
            delay = retry_after
            self.imposed_until = now + retry_after
        else:
            delay = self._policy.delay(self.failures, random.random())
        self.next_attempt = now + delay
        return delay

    def hold(self, seconds: float) -> None:
        """No attempt for `seconds` from now, unless hurried (flush)."""
        self.next_attempt = max(self.next_attempt, self._clock() + seconds)

    def hurry(self) -> None:
        """Try again now (flush), except before a time the server asked us to wait for."""
        self.next_attempt = min(self.next_attempt, max(self._clock(), self.imposed_until))
