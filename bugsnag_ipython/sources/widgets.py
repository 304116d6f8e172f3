"""Widgets: exceptions in their callbacks, and the user's widget activity (a click, a slider
moved) as the foreground. It does not import ipywidgets."""

from __future__ import annotations

import sys
from types import FrameType
from typing import TYPE_CHECKING, Any, NamedTuple

from ..core.basics import JsonDict
from . import Source

if TYPE_CHECKING:
    from ..client import Client

# Where ipywidgets' machinery runs between a user's action and their callback.
WIDGET_MODULES = ("ipywidgets.", "traitlets.", "comm.")
MAX_FRAMES = 64  # how far out from ipywidgets' catch to look for the widget the user touched
_OWN_MODEL_IDS: set[str] = set()  # the status panel's buttons


def not_user_activity(widget: Any) -> None:
    """Mark one of this package's widgets: its messages never count as the user's activity."""
    _OWN_MODEL_IDS.add(widget.model_id)


class WidgetAction(NamedTuple):
    """What the user did to which widget, as an event's context and `widget` tab say it."""

    widget_class: str
    description: str
    model_id: str | None
    action: str  # click, change, submit, ... or `callback` when nothing says more

    @property
    def context(self) -> str:
        named = f' "{self.description}"' if self.description else ""
        return f"{self.widget_class} {self.action}{named}"

    def facts(self) -> JsonDict:
        return {"class": self.widget_class, "description": self.description, "modelId": self.model_id,
                "action": self.action}


def describe(widget: Any, action: str) -> WidgetAction:
    """A live widget (it has a model id) by its class and its description, or interact's function."""
    description = getattr(widget, "description", "")
    if not (isinstance(description, str) and description):
        description = getattr(getattr(widget, "f", None), "__name__", "")  # interact's function
    return WidgetAction(type(widget).__name__, str(description)[:100], widget.model_id, action)


def message_action(data: Any) -> str | None:
    """The user's action a widget message carries: `click` (or another custom event), `change`."""
    method = data.get("method") if isinstance(data, dict) else None
    if method == "update":
        return "change"
    if method != "custom":
        return None
    content = data.get("content")
    event = content.get("event") if isinstance(content, dict) else None
    return event if isinstance(event, str) and event else "message"


def _module_of(frame: FrameType) -> str:
    return str(frame.f_globals.get("__name__", ""))


class WidgetCallbacks(Source):
    """Two wraps: the kernel's `comm_msg` handler (a message to a user's widget is activity) and
    the shell's `showtraceback` (what ipywidgets caught is an unhandled event)."""

    def __init__(self, client: Client, shell: Any, kernel: Any) -> None:
        super().__init__(client)
        self.shell = shell
        self.kernel = kernel  # None outside a kernel (terminal IPython): no comm_msg to hook
        self.current: WidgetAction | None = None  # the user's message being handled
        self._last: WidgetAction | None = None
        self._previous: Any = None
        self._show: Any = None
        self._had_own: Any = None  # an instance attribute someone set before us
        self._active = False

    def install(self) -> None:
        handlers = getattr(self.kernel, "shell_handlers", None)
        if isinstance(handlers, dict) and "comm_msg" in handlers:
            self._previous = handlers["comm_msg"]
            handlers["comm_msg"] = self.comm_msg
        self._had_own = self.shell.__dict__.get("showtraceback")
        self._show = self.shell.showtraceback
        self.shell.showtraceback = self.showtraceback
        self._active = True

    def uninstall(self) -> None:
        self._active = False  # if someone wrapped us in turn, we stay in their chain, idle
        handlers = getattr(self.kernel, "shell_handlers", None)
        if isinstance(handlers, dict) and handlers.get("comm_msg") == self.comm_msg:
            handlers["comm_msg"] = self._previous
        if self.shell.__dict__.get("showtraceback") == self.showtraceback:
            if self._had_own is None:
                del self.shell.showtraceback
            else:
                self.shell.showtraceback = self._had_own

    def comm_msg(self, stream: Any, ident: Any, msg: Any) -> Any:
        action = self._started(msg) if self._active else None
        if action is None:
            return self._previous(stream, ident, msg)
        outer, self.current = self.current, action
        try:
            return self._previous(stream, ident, msg)
        finally:
            self.current = outer
            try:
                self.client.widget_message_finished()
            except Exception:
                self.internal_failure("comm_msg")

    def _started(self, msg: Any) -> WidgetAction | None:
        try:
            content = msg["content"]
            action, comm_id = message_action(content.get("data")), content.get("comm_id")
            if action is None or comm_id in _OWN_MODEL_IDS:
                return None
            # ipywidgets' live widgets by model id (`Widget.widgets` warns of its deprecation);
            # no widgets before it is imported.
            widget = getattr(sys.modules.get("ipywidgets.widgets.widget"), "_instances", {}).get(comm_id)
            if widget is None:
                return None
            user_action = describe(widget, action)
            if user_action != self._last or action != "change":
                # A slider dragged sends a stream of changes: one breadcrumb for them.
                self.client.leave_breadcrumb(user_action.context, user_action.facts(), "user")
            self._last = user_action
            self.client.widget_message_started()
            return user_action
        except Exception:
            self.internal_failure("comm_msg")
            return None

    def showtraceback(self, exc_tuple: Any = None, *args: Any, **kwargs: Any) -> Any:
        caller = sys._getframe(1)
        # ipywidgets' own catch (not a cell's error, which IPython shows through this too).
        if self._active and _module_of(caller).startswith("ipywidgets."):
            error = exc_tuple[1] if exc_tuple else sys.exc_info()[1]
            try:
                if isinstance(error, BaseException) and self.client.should_report(error):
                    action = self._action(caller)
                    self.client.notify_unhandled(error, action.context, "widget", action.facts())
            except Exception:
                self.internal_failure("widget callback")
        return self._show(exc_tuple, *args, **kwargs)

    def _action(self, caller: FrameType) -> WidgetAction:
        """What the user did: the click or change being handled, else (a cell's `button.click()`,
        `interact(...)`) the outermost widget in ipywidgets' frames out from its catch."""
        if self.current is not None:
            return self.current
        found = WidgetAction("Widget", "", None, "callback")
        frame: FrameType | None = caller
        for _ in range(MAX_FRAMES):
            if frame is None or not _module_of(frame).startswith(WIDGET_MODULES):
                break
            widget = frame.f_locals.get("self")
            if isinstance(getattr(widget, "model_id", None), str) and hasattr(widget, "_model_name"):
                function = frame.f_code.co_name
                found = describe(widget, function if function in ("click", "submit") else "callback")
            frame = frame.f_back
        return found
