"""BugSnag session tracking and error reporting for Jupyter notebooks: ``%load_ext bugsnag_ipython``.
Importing this package does nothing else: the client, hooks and threads exist once it is loaded."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping

    from .client import Client
    from .core.sessions import SessionSnapshot
    from .notebook.extension import Extension

__all__ = [
    "add_metadata", "add_on_error", "clear_metadata", "configure", "current_session", "flush",
    "get_metadata", "leave_breadcrumb", "load_ipython_extension", "notify", "panel", "pause_session",
    "remove_on_error", "resume_session", "set_api_key", "set_context", "set_user", "start_session",
    "unload_ipython_extension",
]


class NotLoadedError(RuntimeError):
    """The extension is not loaded in this shell."""

    def _render_traceback_(self) -> list[str]:
        return [f"bugsnag_ipython: {self}"]


def load_ipython_extension(shell: Any) -> None:
    from .notebook import extension

    extension.load(shell)


def unload_ipython_extension(shell: Any) -> None:
    from .notebook import extension

    extension.unload(shell)


def _loaded() -> Extension | None:
    from IPython import get_ipython

    from .notebook import extension

    return extension.active(get_ipython())  # None outside IPython too


def _extension() -> Extension:
    loaded = _loaded()
    if loaded is None:
        raise NotLoadedError("the extension is not loaded in this shell; "
                             "run %load_ext bugsnag_ipython first.")
    return loaded


def _client() -> Client:
    return _extension().client


def configure(**options: Any) -> None:
    """Change options from now on, e.g. ``configure(api_key=..., app_version="1.2")``. A refused
    value raises ConfigurationError (a ValueError) naming the option, and changes nothing."""
    _client().configure(**options)


def set_api_key() -> None:
    """Ask for the API key at a prompt that does not echo (as ``%bugsnag_key``), use it here and
    save it, readable only by you, for later kernels; before the extension is loaded, only save it."""
    from .notebook.magics import ask_for_key

    loaded = _loaded()
    if loaded is None:
        ask_for_key(None)
    else:
        loaded.ask_for_key()


def start_session() -> SessionSnapshot:
    """Start a new session, replacing the current one."""
    return _client().tracker.start_session()


def pause_session() -> None:
    """Errors from now on count against no session, until resumed or a new one starts."""
    _client().pause_session()


def resume_session() -> bool:
    """Resume the paused session (True), or keep/start one (False)."""
    return _client().resume_session()


def current_session() -> SessionSnapshot | None:
    """The current session (id, started_at, handled, unhandled, paused), or None."""
    return _client().current_session()


def notify(exception: BaseException, *, severity: str | None = None, context: str | None = None,
           metadata: dict[str, Any] | None = None) -> None:
    """Report a handled exception (severity "warning" unless given)."""
    _client().notify(exception, severity=severity, context=context, metadata=metadata)


def leave_breadcrumb(name: str, metadata: dict[str, Any] | None = None, type: str = "manual") -> None:
    """Add a breadcrumb to the trail sent with the next events."""
    _client().leave_breadcrumb(name, metadata, type)


def panel() -> None:
    """Show the live status panel (in a terminal, the status text)."""
    _extension().show_panel()


def flush(timeout: float = 5.0) -> bool:
    """Try to deliver everything pending now; True when nothing is left."""
    return _client().flush(timeout)


def add_metadata(section: str, key_or_values: str | Mapping[str, Any], value: Any = None) -> None:
    """Add to a tab of every later event: ``add_metadata("data", "rows", 120)`` or
    ``add_metadata("data", {"rows": 120, "source": "s3"})``. A value of None removes the key."""
    _client().metadata.add(section, key_or_values, value)


def clear_metadata(section: str, key: str | None = None) -> None:
    """Remove a whole tab, or one key of it."""
    _client().metadata.clear(section, key)


def get_metadata(section: str, key: str | None = None) -> Any:
    """A copy of a tab added with add_metadata (None if there is none), or one key's value."""
    return _client().metadata.get(section, key)


def set_context(context: str | None) -> None:
    """What later events are about, shown as their title; None goes back to the running
    cell's ``In [n]``."""
    _client().set_context(context)


def set_user(id: str | None = None, email: str | None = None, name: str | None = None) -> None:
    """The user of later events and sessions. With nothing given, back to the default:
    ``JUPYTERHUB_USER`` when set, else this device's id."""
    _client().set_user(id, email, name)


def add_on_error(callback: Callable[[dict[str, Any]], Any]) -> None:
    """Run ``callback(event)`` before each event is sent, in the order added: it may change the
    event (a dict), or return False to discard it. One that raises is logged once."""
    _client().on_error.add(callback)


def remove_on_error(callback: Callable[[dict[str, Any]], Any]) -> None:
    """Stop running a callback added with add_on_error."""
    _client().on_error.remove(callback)
