"""The client's side of delivery. Delivery itself (threads, outbox, `requests`) is made with the
first payload handed over, so that loading the extension pays for none of it."""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable
from typing import TYPE_CHECKING

from ..core.basics import JsonDict, log
from ..report import payloads
from ..report.trimming import scrub

if TYPE_CHECKING:
    from ..core.config import Configuration
    from .delivery import Delivery
    from .payload import Kind


class Dispatcher:
    """Addresses each payload the client makes and hands it to delivery, or holds it without a key."""

    def __init__(self, config: Configuration, *, on_change: Callable[[], None],
                 wall_clock: Callable[[], float], delivery: Delivery | None = None) -> None:
        self.config = config
        self._secrets = config.secrets  # made once: every payload is scrubbed of them
        self._changed = on_change
        self._wall_clock = wall_clock
        self._delivery: Delivery | None = None
        self._delivery_lock = threading.Lock()
        if delivery is not None:
            self._use(delivery)
        self._held: deque[tuple[Kind, JsonDict, float]] = deque()  # kind, payload, made at
        self._held_lock = threading.Lock()
        self.held_overflow = 0  # held payloads dropped for the newest, over the cap

    def reconfigure(self, config: Configuration) -> None:
        """Use new options; a key set for the first time sends what was held."""
        had_key = self.config.api_key
        self.config = config
        self._secrets = config.secrets
        if self._delivery is not None:
            self._delivery.reconfigure(config)
        if config.api_key and not had_key:
            with self._held_lock:
                held, self._held = self._held, deque()
            for kind, payload, created_at in held:
                self._submit(kind, payload, created_at)

    def send(self, kind: Kind, payload: JsonDict, encoded: bytes | None = None) -> None:
        """Hand a payload (and its body for the current key, if made) to delivery, or hold it."""
        if not self.config.api_key:
            with self._held_lock:
                if len(self._held) >= self.config.max_held_payloads:
                    self._held.popleft()
                    self.held_overflow += 1
                self._held.append((kind, payload, self._wall_clock()))
            return
        self._submit(kind, payload, self._wall_clock(), encoded)

    @property
    def delivery(self) -> Delivery:
        """The delivery, made with the first payload to hand over (or the first look at it)."""
        if self._delivery is None:
            with self._delivery_lock:
                if self._delivery is None:
                    from .delivery import Delivery

                    self._use(Delivery())
        assert self._delivery is not None
        return self._delivery

    def _use(self, delivery: Delivery) -> None:
        delivery.reconfigure(self.config)
        delivery.listeners.append(self._changed)
        self._delivery = delivery

    def _submit(self, kind: Kind, payload: JsonDict, created_at: float, encoded: bytes | None = None) -> None:
        from .payload import Payload

        key = self.config.api_key
        assert key is not None
        url = self.config.sessions_url if kind == "session" else self.config.notify_url
        if url is None:
            return
        if kind == "event" and payload.get("apiKey") != key:
            payload, encoded = {**payload, "apiKey": key}, None  # made before this key was set
        if encoded is None:
            encoded = payloads.encode(payload)
        # Finished: the key (pasted into a cell, say) and the endpoints' credentials leave no string.
        encoded = scrub(encoded, self._secrets)
        self.delivery.submit(Payload(kind, url, key, encoded, created_at))

    @property
    def held(self) -> int:
        return len(self._held)

    def flush(self, timeout: float) -> bool:
        return self.delivery.flush(timeout) and not self._held

    def close(self, timeout: float) -> None:
        if self._held:
            log.info("%d payloads held without an API key are discarded at exit.", self.held)
        if self._delivery is not None:  # none was made: nothing was ever handed over
            self._delivery.close(timeout)
