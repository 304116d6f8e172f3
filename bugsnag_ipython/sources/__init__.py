"""Failure sources: each module hooks one thing in the kernel and hands what it catches to the
client. An exception escaping a callback reaches the user's cell: each body catches everything."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING

from ..report.naming import class_name, message_of

if TYPE_CHECKING:
    from ..client import Client


class Source:
    """One hook into the kernel, installed at load and removed again on unload."""

    def __init__(self, client: Client) -> None:
        self.client = client

    def install(self) -> None:
        raise NotImplementedError

    def uninstall(self) -> None:
        raise NotImplementedError

    def internal_failure(self, where: str) -> None:
        """Say once that the extension failed in `where` (called in an `except` block)."""
        error = sys.exc_info()[1]
        what = f"{class_name(error)}: {message_of(error)}" if error is not None else "unknown"
        self.client.once.say(f"internal-{where}",
                             f"bugsnag_ipython failed in {where} ({what}); your code is unaffected.")
