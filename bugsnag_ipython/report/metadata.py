"""The user's metadata tabs, kept as the other BugSnag notifiers keep them: `add_metadata(section,
key, value)` sets one key, `add_metadata(section, {...})` merges a mapping, a value of None
removes the key, and `clear_metadata(section)` removes the whole tab."""

from __future__ import annotations

import threading
from collections.abc import Mapping
from typing import Any

from ..core.basics import JsonDict


class MetadataStore:
    """The tabs added by the user, safe to change from any thread. A tab is replaced, never
    changed in place, so an event's copy of each tab is its own."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._sections: dict[str, JsonDict] = {}

    def add(self, section: str, key_or_values: str | Mapping[str, Any], value: Any = None) -> None:
        if isinstance(key_or_values, Mapping):
            changes = {str(k): v for k, v in key_or_values.items()}
        elif isinstance(key_or_values, str):
            changes = {key_or_values: value}
        else:
            raise TypeError(
                "add_metadata takes a key and a value, or a dict of keys and values, "
                f"not {type(key_or_values).__name__}."
            )
        with self._lock:
            tab = dict(self._sections.get(str(section), {}))
            for key, item in changes.items():
                if item is None:
                    tab.pop(key, None)
                else:
                    tab[key] = item
            if tab:
                self._sections[str(section)] = tab
            else:
                self._sections.pop(str(section), None)

    def clear(self, section: str, key: str | None = None) -> None:
        if key is not None:
            self.add(section, {key: None})
            return
        with self._lock:
            self._sections.pop(str(section), None)

    def get(self, section: str, key: str | None = None) -> Any:
        with self._lock:
            tab = self._sections.get(str(section))
            if key is None:
                return dict(tab) if tab is not None else None
            return tab.get(key) if tab is not None else None

    def snapshot(self) -> dict[str, JsonDict]:
        """A copy for one event: the tabs are copied, their values are not (they may be big)."""
        with self._lock:
            return {section: dict(tab) for section, tab in self._sections.items()}
