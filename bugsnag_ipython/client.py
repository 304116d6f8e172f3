"""The client: ties configuration, the session tracker, breadcrumbs and delivery together.

No IPython here: the glue in `extension.py` turns kernel events into calls of this object, and
the public API and the magics call it too. Every entry point that a cell reaches through a
kernel event is guarded by the glue; the public calls raise only ConfigurationError.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from functools import cached_property
from typing import Any

from . import environment, payloads
from .breadcrumbs import Breadcrumbs
from .config import Configuration, mask_api_key
from .delivery import Delivery, Envelope, Kind
from .sessions import SessionSnapshot, SessionTracker
from .stacktrace import CellRef, FrameContext, exception_entries

log = logging.getLogger("bugsnag_ipython")

SEVERITIES = ("error", "warning", "info")
OnError = Callable[[dict[str, Any]], Any]


@dataclass(frozen=True)
class CellRun:
    """The cell that is running, as the glue saw it start."""

    execution_count: int | None
    cell_id: str | None
    source: str
    started_monotonic: float


@dataclass(frozen=True)
class _Held:
    kind: Kind
    payload: dict[str, Any]
    created_at: float


class Client:
    def __init__(
        self,
        config: Configuration,
        *,
        delivery: Delivery | None = None,
        monotonic: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], float] = time.time,
        resolve_cell: Callable[[str], CellRef | None] = lambda _filename: None,
    ) -> None:
        self.config = config
        self.delivery = delivery if delivery is not None else Delivery()
        self.delivery.reconfigure(config)
        self._monotonic = monotonic
        self._wall_clock = wall_clock
        self._resolve_cell = resolve_cell
        self.tracker = SessionTracker(
            auto_track=config.auto_track_sessions,
            background_timeout=config.background_timeout,
            monotonic=monotonic,
            wall_clock=wall_clock,
        )
        self.tracker.add_listener(self._on_session_started)
        self.breadcrumbs = Breadcrumbs(config.max_breadcrumbs)
        self.launched_at = monotonic()
        self.cell: CellRun | None = None
        self.metadata: dict[str, dict[str, Any]] = {}
        self.context: str | None = None
        self.user: dict[str, str] = {}
        self.on_error: list[OnError] = []
        self.problems: list[str] = []  # configuration problems, shown by status
        self._held: deque[_Held] = deque()
        self._held_lock = threading.Lock()
        self.held_overflow = 0
        self._warned: set[str] = set()
        self.listeners: list[Callable[[], None]] = []
        self.delivery.listeners.append(self._changed)
        self._warn_about_endpoints()

    # -- configuration ------------------------------------------------------------------

    def configure(self, **changes: Any) -> None:
        """Apply option changes from now on; a refused change raises and changes nothing."""
        updated = self.config.replace(**changes)
        had_key = self.config.api_key
        self.config = updated
        self.tracker.auto_track = updated.auto_track_sessions
        self.tracker.background_timeout = updated.background_timeout
        self.breadcrumbs.resize(updated.max_breadcrumbs)
        self.delivery.reconfigure(updated)
        self._warn_about_endpoints()
        if updated.api_key and not had_key:
            self._release_held()
        self._changed()

    def _warn_about_endpoints(self) -> None:
        if self.config.sessions_url is None:
            self.warn_once(
                "sessions-off",
                "notify_endpoint is set without sessions_endpoint, so sessions are not sent; "
                "set sessions_endpoint too to track stability.",
            )

    def warn_once(self, key: str, message: str) -> None:
        if key not in self._warned:
            self._warned.add(key)
            log.warning(message)

    # -- sessions -------------------------------------------------------------------------

    def launch(self, *, in_background: bool) -> None:
        self.tracker.launch(in_background=in_background)

    def start_session(self) -> SessionSnapshot:
        return self.tracker.start_session()

    def pause_session(self) -> None:
        if self.tracker.pause_session():
            self.leave_breadcrumb("Session paused", None, "state")
        self._changed()

    def resume_session(self) -> bool:
        resumed, session = self.tracker.resume_session()
        if resumed:
            self.leave_breadcrumb("Session resumed", {"id": session.id}, "state")
        self._changed()
        return resumed

    def current_session(self) -> SessionSnapshot | None:
        return self.tracker.current()

    def _on_session_started(self, session: SessionSnapshot) -> None:
        self.leave_breadcrumb("Session started", {"id": session.id}, "state")
        if self.config.release_stage_enabled and self.config.sessions_url is not None:
            payload = payloads.session_payload(
                session,
                notifier=environment.NOTIFIER,
                app=self._app(include_timing=False),
                device=self._device_facts,
                user=self._user(),
            )
            self._send("session", payload)
        self._changed()

    # -- cells ---------------------------------------------------------------------------

    def cell_started(self, run: CellRun) -> None:
        self.cell = run
        if self.tracker.enter_foreground() is not None:
            self._changed()

    def cell_finished(self, error: BaseException | None) -> None:
        run = self.cell
        self.cell = None
        self.tracker.enter_background()
        if run is not None:
            elapsed_ms = round((self._monotonic() - run.started_monotonic) * 1000)
            label = f"In [{run.execution_count}]" if run.execution_count else "Cell"
            self.breadcrumbs.leave(
                label,
                self._wall_clock(),
                {"durationMs": elapsed_ms, "status": "error" if error is not None else "ok"},
                "process",
            )

    # -- events ---------------------------------------------------------------------------

    def should_report(self, error: BaseException) -> bool:
        names = {cls.__name__ for cls in type(error).__mro__}
        names |= {f"{cls.__module__}.{cls.__qualname__}" for cls in type(error).__mro__}
        return not names & set(self.config.discard_classes)

    def notify(
        self,
        error: BaseException,
        *,
        unhandled: bool = False,
        severity: str | None = None,
        context: str | None = None,
        metadata: dict[str, Any] | None = None,
        cell: CellRun | None = None,
    ) -> bool:
        """Report one event; True if it was handed to delivery (or held for a key)."""
        if severity is not None and severity not in SEVERITIES:
            from .config import ConfigurationError

            raise ConfigurationError(
                f"severity must be one of {', '.join(SEVERITIES)}, not {severity!r}."
            )
        if not self.config.release_stage_enabled:
            return False
        if unhandled:
            reason, chosen = "unhandledException", "error"
        elif severity is not None:
            reason, chosen = "userSpecifiedSeverity", severity
        else:
            reason, chosen = "handledException", "warning"
        if unhandled and severity is not None:
            chosen = severity
        frames = FrameContext(
            resolve_cell=self._resolve_cell,
            project_root=self.config.project_root,
            send_code=self.config.send_code,
        )
        body = payloads.event(
            exceptions=exception_entries(error, frames),
            unhandled=unhandled,
            severity=chosen,
            severity_reason=reason,
            app=self._app(include_timing=True),
            device={**self._device_facts, "time": payloads.iso8601(self._wall_clock())},
            user=self._user(),
            context=context or self.context or self._cell_context(cell),
            breadcrumbs=self.breadcrumbs.snapshot(),
            metadata=self._metadata(metadata, cell),
        )
        if not self._run_on_error(body):
            return False
        session = self.tracker.track_event(unhandled=unhandled)
        if session is not None:
            body["session"] = payloads.event_session(session)
        body["metaData"] = payloads.redact(body.get("metaData", {}), self.config.redacted_keys)
        body["breadcrumbs"] = payloads.redact(body["breadcrumbs"], self.config.redacted_keys)
        if "user" in body:
            body["user"] = payloads.redact(body["user"], self.config.redacted_keys)
        self._send("event", payloads.event_payload("", environment.NOTIFIER, [body]))
        exception = body["exceptions"][0] if body["exceptions"] else {}
        self.leave_breadcrumb(
            str(exception.get("errorClass", type(error).__name__)),
            {"message": str(exception.get("message", ""))[:200], "unhandled": unhandled},
            "error",
        )
        self._changed()
        return True

    def _run_on_error(self, body: dict[str, Any]) -> bool:
        for callback in list(self.on_error):
            try:
                if callback(body) is False:
                    return False
            except Exception as error:
                self.warn_once(
                    f"callback-{id(callback)}",
                    f"An on_error callback raised {type(error).__name__}: {error}; "
                    "the event is sent as the callback left it.",
                )
        return True

    def _cell_context(self, cell: CellRun | None) -> str | None:
        run = cell or self.cell
        if run is not None and run.execution_count:
            return f"In [{run.execution_count}]"
        return None

    def _metadata(self, extra: dict[str, Any] | None, cell: CellRun | None) -> dict[str, Any]:
        merged: dict[str, Any] = {section: dict(values) for section, values in self.metadata.items()}
        run = cell or self.cell
        if run is not None:
            notebook = merged.setdefault("notebook", {})
            notebook["executionCount"] = run.execution_count
            if run.cell_id:
                notebook["cellId"] = run.cell_id
            if self.config.send_code:
                notebook["cellSource"] = run.source
        for section, values in (extra or {}).items():
            if isinstance(values, dict):
                merged.setdefault(str(section), {}).update(values)
            else:
                merged.setdefault("custom", {})[str(section)] = values
        return merged

    def leave_breadcrumb(
        self, name: str, metadata: dict[str, Any] | None = None, type: str = "manual"
    ) -> None:
        self.breadcrumbs.leave(name, self._wall_clock(), metadata, type)

    # -- payload facts ------------------------------------------------------------------

    @cached_property
    def _device_facts(self) -> dict[str, Any]:
        return environment.device_facts()

    def _app(self, *, include_timing: bool) -> dict[str, Any]:
        app: dict[str, Any] = {"type": "jupyter", "releaseStage": self.config.release_stage}
        if self.config.app_version:
            app["version"] = self.config.app_version
        if include_timing:
            now = self._monotonic()
            run = self.cell
            app["duration"] = round((now - self.launched_at) * 1000)
            app["durationInForeground"] = (
                round((now - run.started_monotonic) * 1000) if run is not None else 0
            )
            app["inForeground"] = run is not None
        return app

    def _user(self) -> dict[str, str]:
        if self.user:
            return dict(self.user)
        hub_user = environment.jupyterhub_user()
        return {"id": hub_user} if hub_user else {}

    # -- delivery -----------------------------------------------------------------------

    def _send(self, kind: Kind, payload: dict[str, Any]) -> None:
        if not self.config.api_key:
            with self._held_lock:
                if len(self._held) >= self.config.max_held_payloads:
                    self._held.popleft()
                    self.held_overflow += 1
                self._held.append(_Held(kind, payload, self._wall_clock()))
            return
        self._submit(kind, payload, self._wall_clock())

    def _submit(self, kind: Kind, payload: dict[str, Any], created_at: float) -> None:
        key = self.config.api_key
        assert key is not None
        url = self.config.sessions_url if kind == "session" else self.config.notify_url
        if url is None:
            return
        if kind == "event":
            payload = {**payload, "apiKey": key}
        self.delivery.submit(Envelope(kind, url, key, payloads.encode(payload), created_at))

    def _release_held(self) -> None:
        with self._held_lock:
            held = list(self._held)
            self._held.clear()
        for item in held:
            self._submit(item.kind, item.payload, item.created_at)

    @property
    def held(self) -> int:
        return len(self._held)

    def flush(self, timeout: float = 5.0) -> bool:
        delivered = self.delivery.flush(timeout)
        return delivered and not self._held

    def shutdown(self, timeout: float = 1.5) -> None:
        if self._held:
            log.info("%d payloads held without an API key are discarded at exit.", self.held)
        self.delivery.close(timeout)

    # -- state for status and the panel ------------------------------------------------

    def _changed(self) -> None:
        for listener in list(self.listeners):
            try:
                listener()
            except Exception:
                log.debug("client listener failed", exc_info=True)

    def status_text(self) -> str:
        from .status import status_text

        return status_text(self)

    def masked_key(self) -> str:
        return mask_api_key(self.config.api_key)
