"""The status panel. Until the widget exists, it shows the status text."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .client import Client


def show_panel(client: Client) -> None:
    print(client.status_text())
