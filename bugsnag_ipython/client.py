"""The Client: one kernel's reporter, without IPython."""

from __future__ import annotations

import math
import time
from collections import deque
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from .core.basics import JsonDict, Once, tell
from .core.config import Configuration, ConfigurationError
from .core.launch import LaunchSession, ReleaseLookup
from .core.private_files import Refusals
from .core.sessions import SessionSnapshot, SessionTracker
from .delivery.dispatcher import Dispatcher
from .report import environment, events, payloads, trimming
from .report.breadcrumbs import Breadcrumbs
from .report.cells import CellMap
from .report.events import SEVERITIES, CellRun, MetadataStore, ThreadInfo

if TYPE_CHECKING:  # imported with the first payload or report, not at load
    from .delivery.delivery import Delivery
    from .report.kernel_death import KernelDeath


class Client:
    """One kernel's reporter: options, sessions and what events carry, turned into payloads for
    delivery. Of its calls only ConfigurationError comes out; `listeners` hear of every change."""

    def __init__(self, config: Configuration, *, delivery: Delivery | None = None,
                 monotonic: Callable[[], float] = time.monotonic,
                 wall_clock: Callable[[], float] = time.time, resolve_cell: CellMap | None = None) -> None:
        self.config = config
        self.dispatcher = Dispatcher(config, on_change=self._changed, wall_clock=wall_clock,
                                     delivery=delivery)
        self._resolve_cell = CellMap() if resolve_cell is None else resolve_cell
        self.tracker = SessionTracker(config.auto_track_sessions, config.background_timeout, monotonic,
                                      wall_clock)
        self.tracker.add_listener(self._on_session_started)
        self.breadcrumbs = Breadcrumbs(config.max_breadcrumbs)
        self.launched_at = monotonic()
        self._launched_wall = wall_clock()
        self.cell: CellRun | None = None  # the cell running now
        self.widget_message_since: float | None = None  # while a widget message is handled
        # What notify_unhandled reported in a cell: raised again by that cell, it is no new event.
        self._caught_in_cell: deque[tuple[CellRun, BaseException]] = deque(maxlen=16)
        self.metadata = MetadataStore()
        self._facts = environment.PayloadFacts(lambda: self.config.persistence_directory)
        self.context: str | None = None  # set_context(): replaces the automatic `In [n]`
        self.user: dict[str, str] = {}  # set_user()
        self.on_error = events.OnErrorCallbacks()
        self.problems: list[str] = []  # for status, as are the next three
        self.crash_records = Refusals()
        self.previous_death: str | None = None
        self.origins: dict[str, str] = {}
        self.release_lookup = ReleaseLookup()  # the default app version
        self.on_first_held_event: Callable[[], None] | None = None  # called once, when one is held
        self.once = Once()  # warnings a kernel may meet repeatedly are said once
        self._launch = LaunchSession(send=self._send_session, prepare=lambda: self._facts.device,
                                     busy=lambda: self.tracker.in_foreground)
        self.listeners: list[Callable[[], None]] = []
        self._run_tab: Callable[[], JsonDict | None] | None = None
        self._one_session = False
        self._warn_about_endpoints()

    def configure(self, origin: str = "call", /, **changes: Any) -> None:
        """Apply option changes from now on (`origin`: where they came from); a refused one raises."""
        config = self.config = self.config.replace(**changes)
        self.origins.update(dict.fromkeys(changes, origin))
        self.tracker.auto_track = config.auto_track_sessions
        self.tracker.background_timeout = math.inf if self._one_session else config.background_timeout
        self.breadcrumbs.resize(config.max_breadcrumbs)
        self.dispatcher.reconfigure(config)
        self._warn_about_endpoints()
        self._changed()

    def _warn_about_endpoints(self) -> None:
        if self.config.sessions_url is None:
            self.once.say("sessions-off", "notify_endpoint is set without sessions_endpoint, so sessions "
                          "are not sent; set sessions_endpoint too to track stability.")

    @property
    def app_version(self) -> str | None:
        """The option's, else the release found (waited for, so a kernel's payloads name one)."""
        release = None if self.config.app_version else self.release_lookup.result()
        return self.config.app_version or (release.version if release is not None else None)

    def launch(self, *, in_background: bool) -> None:
        """The launch: its session starts now, its payload is made a moment later."""
        self._launch.launch(lambda: self.tracker.launch(in_background=in_background))

    def send_launch_session(self) -> None:
        self._launch.send_now()

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

    def headless_run(self, tab: Callable[[], JsonDict | None], *, one_session: bool) -> None:
        """A runner runs the notebook: `tab` gives events their `run` tab; `one_session`: no idle split."""
        self._run_tab = tab
        self._one_session = one_session
        self.tracker.background_timeout = math.inf if one_session else self.config.background_timeout

    def _on_session_started(self, session: SessionSnapshot) -> None:
        self.leave_breadcrumb("Session started", {"id": session.id}, "state")
        if not self._launch.hold(session):  # the launch's is sent off the loading thread
            self._launch.send_now()  # a session that replaces the launch one comes after it
            self._send_session(session)
        self._changed()

    def _send_session(self, session: SessionSnapshot) -> None:
        if self.config.release_stage_enabled and self.config.sessions_url is not None:
            payload = payloads.session_payload(session, notifier=environment.NOTIFIER,
                                               app=self._app(include_timing=False), device=self._facts.device,
                                               user=self._facts.user(self.user))
            self.dispatcher.send("session", payload)

    def cell_started(self, run: CellRun) -> None:
        self.cell = run
        if self.tracker.enter_foreground(run.started_monotonic) is not None:
            self._changed()

    def cell_finished(self, error: BaseException | None) -> None:
        run, self.cell = self.cell, None
        ended = self.tracker.monotonic()
        self.tracker.enter_background(ended)
        if run is not None:
            # The wall time of the end, from the monotonic clock: one clock read less per cell.
            at = self._launched_wall + (ended - self.launched_at)
            self.breadcrumbs.leave_cell(run.execution_count, at, run.started_monotonic, ended, error is None)

    def widget_message_started(self) -> None:
        """A message to a widget (a click) is handled: outside a cell, it is the foreground."""
        if self.cell is None and self.widget_message_since is None:
            now = self.widget_message_since = self.tracker.monotonic()
            if self.tracker.enter_foreground(now) is not None:
                self._changed()

    def widget_message_finished(self) -> None:
        if self.widget_message_since is not None:
            self.widget_message_since = None
            if self.cell is None:
                self.tracker.enter_background()

    def should_report(self, error: BaseException) -> bool:
        """Whether an exception the kernel hands over is reported at all."""
        if isinstance(error, ConfigurationError):
            return False  # a refused option is the user's input, not a crash of their code
        return not events.discarded(type(error), self.config.discard_classes)

    def notify(self, error: BaseException, *, unhandled: bool = False, severity: str | None = None,
               context: str | None = None, metadata: JsonDict | None = None) -> bool:
        """Report one event of the running cell; True if it was handed to delivery (or held for a key)."""
        if unhandled and any(run is self.cell and seen is error for run, seen in self._caught_in_cell):
            return False  # reported by notify_unhandled already, and raised again by the cell
        return self._report(error, unhandled=unhandled, severity=severity, context=context, metadata=metadata,
                            cell=self.cell)

    def notify_thread_exception(self, error: BaseException, thread: ThreadInfo) -> bool:
        """Report an exception that ended a thread: unhandled, of the session current now."""
        return self._report(error, unhandled=True, cell=None, thread=thread)

    def notify_unhandled(self, error: BaseException, context: str, section: str, facts: JsonDict) -> bool:
        """Report an exception a widget callback or the event loop caught, with `context` and a tab."""
        if self.cell is not None:
            self._caught_in_cell.append((self.cell, error))
        return self._report(error, unhandled=True, context=self.context or context, metadata={section: facts},
                            cell=self.cell)

    def _report(self, error: BaseException, *, unhandled: bool, cell: CellRun | None,
                severity: str | None = None, context: str | None = None,
                metadata: JsonDict | None = None, thread: ThreadInfo | None = None) -> bool:
        if severity is not None and severity not in SEVERITIES:
            raise ConfigurationError(f"severity must be one of {', '.join(SEVERITIES)}, not {severity!r}.")
        config = self.config
        if not config.release_stage_enabled:
            return False
        self._launch.send_now()
        tabs = self.metadata.snapshot()  # the user's, and the run's (the user's keys win)
        run = self._run_tab() if self._run_tab is not None else None
        if run:
            tabs["run"] = {**run, **tabs.get("run", {})}
        device = {**self._facts.device, "time": payloads.iso8601(self.tracker.wall_clock())}
        facts = events.EventFacts(app=self._app(include_timing=True), device=device,
                                  user=self._facts.user(self.user), tabs=tabs, kernel=self._facts.kernel,
                                  context=self.context)
        body = events.build_event(
            error, unhandled=unhandled, severity=severity, context=context, extra=metadata, cell=cell,
            thread=thread, facts=facts, config=config, cells=self._resolve_cell, breadcrumbs=self.breadcrumbs)
        # As bugsnag-android: callbacks see the event before its session, and a discarded one
        # moves no session counter.
        if self.on_error and not self.on_error.run(body):
            return False
        session = self.tracker.track_event(unhandled=body.get("unhandled") is True)
        if session is not None:
            body["session"] = payloads.event_session(session)
        made = trimming.sealed_event(body, config)
        self.leave_breadcrumb(*events.error_breadcrumb(body), "error")
        return self._send_event(made)

    def notify_kernel_death(self, death: KernelDeath) -> bool:
        """Report an earlier kernel's death: one unhandled event carrying that kernel's session."""
        from .report.kernel_death import death_payload

        made = death_payload(death, self.config, device=self._facts.device,
                             hub_user=environment.jupyterhub_user(), on_error=self.on_error)
        return made is not None and self._send_event(made)

    def previous_kernel_died(self, text: str) -> None:
        self.previous_death = text
        self._changed()

    @property
    def device(self) -> JsonDict:
        return self._facts.device

    def set_context(self, context: str | None) -> None:
        self.context = str(context) if context else None

    def set_user(self, id: str | None = None, email: str | None = None, name: str | None = None) -> None:
        fields = {"id": id, "email": email, "name": name}
        self.user = {key: str(value) for key, value in fields.items() if value is not None}

    def leave_breadcrumb(self, name: str, metadata: JsonDict | None = None, type: str = "manual") -> None:
        self.breadcrumbs.leave(name, self.tracker.wall_clock(), metadata, type)

    def _app(self, *, include_timing: bool) -> JsonDict:
        app: JsonDict = {"type": "jupyter", "releaseStage": self.config.release_stage}
        version = self.app_version
        if version:
            app["version"] = version
        if include_timing:
            now = self.tracker.monotonic()
            run = self.cell
            since = run.started_monotonic if run is not None else self.widget_message_since
            app["duration"] = round((now - self.launched_at) * 1000)
            app["durationInForeground"] = round((now - since) * 1000) if since is not None else 0
            app["inForeground"] = since is not None
        return app

    def _send_event(self, made: tuple[JsonDict, bytes]) -> bool:
        self.dispatcher.send("event", *made)
        if not self.config.api_key and self.on_first_held_event is not None:
            said, self.on_first_held_event = self.on_first_held_event, None
            said()
        self._changed()
        return True

    @property
    def delivery(self) -> Delivery:
        return self.dispatcher.delivery

    def flush(self, timeout: float = 5.0) -> bool:
        self.send_launch_session()
        return self.dispatcher.flush(timeout)

    def shutdown(self, timeout: float) -> None:
        self.send_launch_session()
        self.dispatcher.close(timeout)

    def _changed(self) -> None:
        tell(self.listeners, "client")
