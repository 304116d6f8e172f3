"""Waiting on a condition, never on the clock: a test goes on as soon as what it waits for is
true, and fails with a message, not a hang, when it never becomes true. What a collector holds
is read here too, once it has arrived."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, TypeVar

T = TypeVar("T")
WAIT = 10.0  # seconds


def eventually(condition: Callable[[], T], seconds: float = WAIT) -> T | None:
    """The first true value `condition()` gives; None once `seconds` have passed without one."""
    deadline = time.monotonic() + seconds
    while not (value := condition()):
        if time.monotonic() > deadline:
            return None
        time.sleep(0.02)
    return value


def waited(condition: Callable[[], object], seconds: float = WAIT) -> float:
    """The seconds until `condition()` was true (polled every 10 ms), for a test that measures
    them; fails once `seconds` have passed without it."""
    started = time.monotonic()
    while not condition():
        assert time.monotonic() - started < seconds, f"never happened within {seconds} s"
        time.sleep(0.01)
    return time.monotonic() - started


def events_of(collector: Any, count: int = 0, seconds: float = WAIT) -> list[Any]:
    """The events `collector` holds, oldest first, once at least `count` have arrived."""
    assert collector.wait_for("events", count, seconds), f"fewer than {count} events arrived"
    return sorted(collector.store.events(), key=lambda e: e.id)


def sessions_of(collector: Any) -> list[str]:
    """The ids of the sessions `collector` holds, in the order they arrived."""
    return [s.session_id for s in collector.store.sessions()]
