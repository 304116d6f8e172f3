"""Waiting on a condition, never on the clock: a test goes on as soon as what it waits for is
true, and fails with a message, not a hang, when it never becomes true."""

from __future__ import annotations

import time
from collections.abc import Callable


def eventually(condition: Callable[[], object], seconds: float = 10.0) -> bool:
    """True as soon as `condition()` is true; False once `seconds` have passed without it."""
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)
    return True
