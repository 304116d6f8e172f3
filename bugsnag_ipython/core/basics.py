"""What every part of the package shares: its logger, the type of a JSON object, and saying a
sentence once (a cause met at every retry or every cell is logged the first time only)."""

import logging
import threading
from collections.abc import Callable, Hashable
from typing import Any

log = logging.getLogger("bugsnag_ipython")
JsonDict = dict[str, Any]


def tell(listeners: list[Callable[[], None]], whose: str) -> None:
    """Call each listener; one that fails is logged at debug: a broken display must not stop a cell."""
    for listener in list(listeners):
        try:
            listener()
        except Exception:
            log.debug("%s listener failed", whose, exc_info=True)


class Once:
    """`say(key, sentence)` logs a warning the first time `key` is met."""

    def __init__(self) -> None:
        self._said: set[Hashable] = set()
        self._lock = threading.Lock()

    def say(self, key: Hashable, sentence: str) -> None:
        if self.first(key):
            log.warning(sentence)

    def first(self, key: Hashable) -> bool:
        """True the first time `key` is met, for callers that say it their own way."""
        with self._lock:
            said = key in self._said
            self._said.add(key)
        return not said
