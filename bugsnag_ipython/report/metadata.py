"""The user's metadata tabs, kept as the other BugSnag notifiers keep them."""

from __future__ import annotations

import threading
from collections.abc import Mapping
from typing import Any

from ..core.basics import JsonDict


class MetadataStore:
    """`add(section, key, value)` sets one key, `add(section, {...})` merges a mapping, a value of
    None removes the key, and `clear(section)` removes the tab. Safe from any thread: a tab is
    replaced, never changed in place, so an event's copy of each tab is its own."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._sections: dict[str, JsonDict] = {}

    def add(self, section: str, key_or_values: str | Mapping[str, Any], value: Any = None) -> None:
        if isinstance(key_or_values, str):
            key_or_values = {key_or_values: value}
        elif not isinstance(key_or_values, Mapping):
            raise TypeError(
                "add_metadata takes a key and a value, or a dict of keys and values, "
                f"not {type(key_or_values).__name__}."
            )
        with self._lock:
            merged = {**self._sections.get(str(section), {}), **{str(k): v for k, v in key_or_values.items()}}
            tab = {key: item for key, item in merged.items() if item is not None}
            self._sections[str(section)] = tab
            if not tab:
                del self._sections[str(section)]

    def clear(self, section: str, key: str | None = None) -> None:
        if key is not None:
            self.add(section, {key: None})
            return
        with self._lock:
            self._sections.pop(str(section), None)

    def get(self, section: str, key: str | None = None) -> Any:
        tab = self._sections.get(str(section))  # never changed in place: no lock needed
        if tab is None or key is None:
            return dict(tab) if tab is not None else None
        return tab.get(key)

    def snapshot(self) -> dict[str, JsonDict]:
        """A copy for one event: the tabs are copied, their values are not (they may be big)."""
        with self._lock:
            return {section: dict(tab) for section, tab in self._sections.items()}
