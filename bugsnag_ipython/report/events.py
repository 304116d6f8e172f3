"""An event from an exception and the kernel's state, and the on-error callbacks that may change it."""

from __future__ import annotations

import json
import threading
import traceback
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, NamedTuple

from ..core.basics import JsonDict, Once, log
from . import payloads
from .breadcrumbs import Trail
from .cells import notebook_ref
from .naming import class_name, message_of, names_of
from .payloads import printable

if TYPE_CHECKING:
    from ..core.config import Configuration
    from .breadcrumbs import Breadcrumbs
    from .cells import CellMap, NotebookRef

OnError = Callable[[JsonDict], Any]
SEVERITIES = ("error", "warning", "info")


class CellRun(NamedTuple):
    """The cell that is running, as the cell hook saw it start."""

    execution_count: int | None
    cell_id: str | None
    source: str
    started_monotonic: float


class DeadCell(NamedTuple):
    """The cell that was running when a kernel died."""

    execution_count: int | None
    cell_id: str | None
    source: str
    ran_ms: int | None  # how long it had run, as far as known


class ThreadInfo(NamedTuple):
    """The thread an unhandled thread exception ended."""

    name: str
    ident: int | None
    daemon: bool


def discarded(error_class: type[BaseException], discard_classes: tuple[str, ...]) -> bool:
    """Whether `discard_classes` names the class or a base of it, by name or module.qualname."""
    return not names_of(error_class).isdisjoint(discard_classes)


def error_the_cell_ended_with(error: BaseException, is_users_code: Callable[[str], bool]) -> BaseException:
    """The error to report for a cell that ended with `error`: an interrupt landing while IPython
    shows a cell's error has that error as its context; one raised in the user's code stays."""
    current: BaseException = error
    for _ in range(8):  # an interrupt of the handling of an interrupt, and so on
        if not isinstance(current, KeyboardInterrupt) or current.__context__ is None:
            break
        frames = traceback.walk_tb(current.__traceback__)
        if any(is_users_code(frame.f_code.co_filename) for frame, _ in frames):
            break
        current = current.__context__
    return error if isinstance(current, KeyboardInterrupt) else current


def context_of(given: str | None, configured: str | None, cell: CellRun | DeadCell | None,
               thread: ThreadInfo | None) -> str | None:
    """The event's context: given > set_context > the thread > the running cell's `In [n]`."""
    if given or configured:
        return given or configured
    if thread is not None:
        return f"Thread {thread.name}"
    if cell is not None and cell.execution_count:
        return f"In [{cell.execution_count}]"
    return None


def notebook_tab(notebook: NotebookRef | None, cell: CellRun | DeadCell | None, *,
                 send_code: bool) -> JsonDict | None:
    """The `notebook` tab: which notebook, and which cell ran (its source unless send_code is off)."""
    tab: JsonDict = {}
    if notebook is not None:
        tab["path"] = notebook.path
    if cell is not None:
        if cell.cell_id:
            tab["cellId"] = cell.cell_id
        tab["executionCount"] = cell.execution_count
        if send_code:
            tab["cellSource"] = cell.source
    return tab or None


class EventFacts(NamedTuple):
    """What every event of this kernel carries, as the client knows it at the moment."""

    app: dict[str, Any]
    device: dict[str, Any]
    user: dict[str, str]
    tabs: dict[str, Any]  # the user's metadata tabs (and a run's)
    kernel: dict[str, Any]
    context: str | None  # set_context()'s, replacing the automatic one


def build_event(error: BaseException, *, unhandled: bool, severity: str | None, context: str | None,
                extra: dict[str, Any] | None, cell: CellRun | None, thread: ThreadInfo | None,
                facts: EventFacts, config: Configuration, cells: CellMap,
                breadcrumbs: Breadcrumbs) -> JsonDict:
    """The event body before the callbacks, the session, redaction and encoding."""
    from .stacktrace import FrameContext, exception_entries  # with the first report, not at load

    if unhandled:
        chosen, reason = severity or "error", "unhandledException"
    else:
        chosen, reason = severity or "warning", "userSpecifiedSeverity" if severity else "handledException"
    notebook = notebook_ref(cells.notebook_path(), config.project_root)
    if cell is not None and not cell.cell_id and cell.execution_count is not None:
        # No frontend sent one: a runner's notebook may know the cell.
        cell = cell._replace(cell_id=cells.cell_id(cell.execution_count))
    frames = FrameContext(resolve_cell=cells, project_root=config.project_root, send_code=config.send_code,
                          notebook=notebook)
    # The user's tabs (a copy), ours under them, then this call's (a non-dict value to `custom`).
    tabs = facts.tabs
    ours = notebook_tab(notebook, cell, send_code=config.send_code)
    if ours is not None:
        tabs["notebook"] = {**ours, **tabs.get("notebook", {})}
    tabs["kernel"] = {**facts.kernel, **tabs.get("kernel", {})}
    if thread is not None:
        tabs["thread"] = {"name": thread.name, "id": thread.ident, "daemon": thread.daemon}
    for section, values in (extra or {}).items():
        if isinstance(values, Mapping):
            tabs[str(section)] = {**tabs.get(str(section), {}), **{str(k): v for k, v in values.items()}}
        else:
            tabs["custom"] = {**tabs.get("custom", {}), str(section): values}
    return payloads.event(
        exceptions=exception_entries(error, frames), unhandled=unhandled, severity=chosen,
        severity_reason=reason, app=facts.app, device=facts.device, user=facts.user,
        context=context_of(context, facts.context, cell, thread),
        breadcrumbs=breadcrumbs.snapshot(config.redacted_keys), metadata=tabs,
    )


def error_breadcrumb(event: JsonDict) -> tuple[str, JsonDict]:
    """The name and metadata of the `error` breadcrumb a sent (valid or repaired) event leaves."""
    first = event["exceptions"][0]
    message = first.get("message") or ""
    return first["errorClass"], {"errorClass": first["errorClass"], "message": message[:200],
                                 "unhandled": event["unhandled"], "severity": event["severity"]}


def user_of(set_by_user: dict[str, str], hub_user: str | None, device_id: str | None) -> dict[str, str]:
    """`set_user(...)`, else JupyterHub's user, else the device id (as bugsnag-android does)."""
    if set_by_user:
        return dict(set_by_user)
    user_id = hub_user or device_id
    return {"id": user_id} if user_id else {}


class MetadataStore:
    """The user's metadata tabs (None removes a key); a tab is replaced, never changed in place."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._sections: dict[str, JsonDict] = {}

    def add(self, section: str, key_or_values: str | Mapping[str, Any], value: Any = None) -> None:
        if isinstance(key_or_values, str):
            key_or_values = {key_or_values: value}
        elif not isinstance(key_or_values, Mapping):
            raise TypeError("add_metadata takes a key and a value, or a dict of keys and values, "
                            f"not {type(key_or_values).__name__}.")
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


class OnErrorCallbacks:
    """`add_on_error` callbacks, run in the order added, each given the event as a dict."""

    def __init__(self) -> None:
        self._callbacks: list[OnError] = []
        self._said = Once()
        self.repaired = 0  # events a callback broke, repaired before sending

    def add(self, callback: OnError) -> None:
        if not callable(callback):
            raise TypeError(f"add_on_error takes a function, not {type(callback).__name__}.")
        self._callbacks.append(callback)

    def remove(self, callback: OnError) -> None:  # one never added: nothing to do
        if callback in self._callbacks:
            self._callbacks.remove(callback)

    def __len__(self) -> int:
        return len(self._callbacks)

    def run(self, event: JsonDict) -> bool:
        """False if a callback discarded the event by returning False. One that raises, or breaks
        the event (repaired, counted), does not discard it: losing a report to its bug is worse."""
        if isinstance(event.get("breadcrumbs"), Trail):  # the trail's own, shared: a copy to change
            event["breadcrumbs"] = json.loads(event["breadcrumbs"].encoded)
        chosen, unhandled = event["severity"], event["unhandled"]
        before = {"exceptions": [_copy(entry) for entry in event["exceptions"]],
                  "unhandled": unhandled, "severityReason": dict(event["severityReason"])}
        for callback in list(self._callbacks):
            try:
                if callback(event) is False:
                    return False
            except Exception as error:
                if self._said.first(("raised", id(callback))):
                    name = getattr(callback, "__qualname__", None)
                    # Strings only: a value that fails to format in logging would print a traceback.
                    log.warning("The on_error callback %s raised %s: %s; the event is sent as the callback "
                                "left it.", name if isinstance(name, str) else "?", class_name(error),
                                message_of(error))
        broken = _repair(event, before)
        if broken:
            self.repaired += 1
            self._said.say("repaired", "An on_error callback left an event that BugSnag would refuse "
                           f"({', '.join(broken)}); it was repaired from what the notifier made and sent.")
        # A severity a callback changed says so, a bad one is undone; a flipped `unhandled` is marked.
        if event.get("severity") not in SEVERITIES:
            event["severity"] = chosen
        elif event["severity"] != chosen:
            event["severityReason"] = {"type": "userCallbackSetSeverity"}
        if event["unhandled"] != unhandled:
            event["severityReason"]["unhandledOverridden"] = True
        return True


def _repair(event: JsonDict, before: JsonDict) -> list[str]:
    """Make `event` one BugSnag accepts (no 400), in place, from `before`; the names of the parts repaired."""
    repaired: list[str] = []
    exceptions = event.get("exceptions")
    entries = [e for e in exceptions if isinstance(e, dict)] if isinstance(exceptions, list) else []
    if not entries or len(entries) != len(exceptions or ()):
        repaired.append("exceptions")
    originals = before["exceptions"]
    event["exceptions"] = entries = entries or [_copy(entry) for entry in originals]
    for index, entry in enumerate(entries):
        if _repair_exception(entry, originals[min(index, len(originals) - 1)]):
            repaired.append(f"exceptions[{index}]")
    if not isinstance(event.get("unhandled"), bool):
        event["unhandled"] = before["unhandled"]
        repaired.append("unhandled")
    reason = event.get("severityReason")
    if not isinstance(reason, dict) or not _is_text(reason.get("type")):
        event["severityReason"] = dict(before["severityReason"])
        repaired.append("severityReason")
    kinds = {"metaData": dict, "breadcrumbs": list, "app": dict, "device": dict, "user": dict}
    for key, kind in kinds.items():
        if key in event and not isinstance(event[key], kind):
            event[key] = kind()
            repaired.append(key)
    context = event.get("context")
    if context is not None and not isinstance(context, str):
        event["context"] = printable(context)
        repaired.append("context")
    return repaired


def _repair_exception(entry: JsonDict, original: JsonDict) -> bool:
    broken = False
    error_class = entry.get("errorClass")
    if not _is_text(error_class):
        shown = printable(error_class) if error_class is not None else ""
        entry["errorClass"] = shown or original["errorClass"]
        broken = True
    message = entry.get("message")
    if message is not None and not isinstance(message, str):
        entry["message"] = printable(message)
        broken = True
    if not _is_text(entry.get("type")):
        entry["type"] = "python"
        broken = True
    frames = entry.get("stacktrace")
    if not isinstance(frames, list):
        entry["stacktrace"] = [dict(frame) for frame in original["stacktrace"]]
        return True
    kept = [frame for frame in frames if isinstance(frame, dict)]
    broken |= len(kept) != len(frames)
    for frame in kept:
        for key in ("file", "method"):
            if key in frame and not isinstance(frame[key], str):
                frame[key] = printable(frame[key])
                broken = True
        line = frame.get("lineNumber")
        if line is not None and (isinstance(line, bool) or not isinstance(line, int)):
            broken = True
            try:
                frame["lineNumber"] = int(line)
            except Exception:
                frame["lineNumber"] = 0
        code = frame.get("code")
        valid = isinstance(code, dict) and all(isinstance(text, str) for text in code.values())
        if code is not None and not valid:
            del frame["code"]
            broken = True
    entry["stacktrace"] = kept
    return broken


def _copy(entry: JsonDict) -> JsonDict:
    return {**entry, "stacktrace": [dict(frame) for frame in entry["stacktrace"]]}


def _is_text(value: object) -> bool:
    return isinstance(value, str) and bool(value)
