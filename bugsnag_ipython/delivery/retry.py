"""How long an endpoint that failed waits before it is tried again."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Mapping
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
