"""BugSnag session tracking and error reporting for Jupyter notebooks.

Load it with ``%load_ext bugsnag_ipython``. Importing this package does nothing else: the
client, hooks and threads exist only once the extension is loaded into a shell.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

if TYPE_CHECKING:
    from .client import Client
    from .sessions import SessionSnapshot

__all__ = [
    "configure",
    "current_session",
    "flush",
    "leave_breadcrumb",
    "load_ipython_extension",
    "notify",
    "panel",
    "pause_session",
    "resume_session",
    "start_session",
    "unload_ipython_extension",
]


class NotLoadedError(RuntimeError):
    """The extension is not loaded in this shell."""

    def _render_traceback_(self) -> list[str]:
        return [f"bugsnag_ipython: {self}"]


def load_ipython_extension(shell: Any) -> None:
    from . import extension

    extension.load(shell)


def unload_ipython_extension(shell: Any) -> None:
    from . import extension

    extension.unload(shell)


def _client() -> Client:
    from IPython import get_ipython

    from . import extension

    shell = get_ipython()
    loaded = extension.active(shell) if shell is not None else None
    if loaded is None:
        raise NotLoadedError(
            "the extension is not loaded in this shell; run %load_ext bugsnag_ipython first."
        )
    return loaded.client


def configure(**options: Any) -> None:
    """Change options from now on, e.g. ``configure(api_key=..., app_version="1.2")``.

    Raises ConfigurationError (a ValueError) naming the option when a value is refused; a
    refused call changes nothing.
    """
    _client().configure(**options)


def start_session() -> SessionSnapshot:
    """Start a new session, replacing the current one."""
    return _client().start_session()


def pause_session() -> None:
    """Errors from now on count against no session, until resumed or a new one starts."""
    _client().pause_session()


def resume_session() -> bool:
    """Resume the paused session (True), or keep/start one (False)."""
    return _client().resume_session()


def current_session() -> SessionSnapshot | None:
    """The current session (id, started_at, handled, unhandled, paused), or None."""
    return _client().current_session()


def notify(
    exception: BaseException,
    *,
    severity: str | None = None,
    context: str | None = None,
    metadata: dict[str, Any] | None = None,
) -> None:
    """Report a handled exception (severity "warning" unless given)."""
    _client().notify(exception, severity=severity, context=context, metadata=metadata)


def leave_breadcrumb(name: str, metadata: dict[str, Any] | None = None, type: str = "manual") -> None:
    """Add a breadcrumb to the trail sent with the next events."""
    _client().leave_breadcrumb(name, metadata, type)


def panel() -> None:
    """Show the live status panel (in a terminal, the status text)."""
    from .status_panel import show_panel

    show_panel(_client())


def flush(timeout: float = 5.0) -> bool:
    """Try to deliver everything pending now; True when nothing is left."""
    return _client().flush(timeout)
