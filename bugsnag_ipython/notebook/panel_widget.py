"""The panel's widgets. Imported only when a panel is first shown in a kernel, so that loading
the extension and running cells never pays for ipywidgets."""

from __future__ import annotations

import html
from collections.abc import Callable
from typing import Any

import ipywidgets as widgets

from ..sources.widgets import not_user_activity
from .status import PanelView, Rows

# Each button's label and tooltip.
BUTTONS = {
    "start": ("New session", "Start a new session, replacing the current one (%bugsnag_session start)"),
    "pause": ("Pause", "Errors from now on count against no session (%bugsnag_session pause)"),
    "resume": ("Resume", "Count errors against the paused session again (%bugsnag_session resume)"),
    "flush": ("Flush", "Deliver what is waiting now, in the background (%bugsnag_session flush)"),
}
# The session's state in green or grey; a delivery problem overrides it, amber while payloads
# wait on a failing endpoint, red when nothing gets through until the user acts.
BADGE_COLOURS = {"active": "#2e7d32", "paused": "#546e7a", "none": "#616161", "unloaded": "#616161"}
DELIVERY_COLOURS = {"failing": "#e65100", "stopped": "#c62828"}
# Fixed widths: a longer value (an error appearing) wraps inside its column, never moves the
# columns; the last error keeps three lines whether there is one or not.
COLUMN_WIDTHS = {"session": "23em", "delivery": "25em", "settings": "19em"}
ERROR_LINES = 3


class PanelBox(widgets.VBox):  # type: ignore[misc]
    """A VBox whose display bundle carries the status as text and HTML too, for the places
    where the widget cannot render."""

    def __init__(self, fallback: Callable[[], tuple[str, str]], **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._fallback = fallback

    def _repr_mimebundle_(self, **kwargs: Any) -> dict[str, Any] | None:
        bundle: dict[str, Any] | None = super()._repr_mimebundle_(**kwargs)
        if bundle is not None:
            bundle["text/plain"], bundle["text/html"] = self._fallback()
        return bundle


class PanelWidgets:
    """The widgets of one displayed panel. `show` copies a view into them; traitlets sends
    only the values that changed, so an unchanged refresh costs no comm message."""

    def __init__(
        self,
        view: PanelView,
        notice: str,
        on_action: Callable[[str], None],
        fallback: Callable[[], tuple[str, str]],
    ) -> None:
        # Built with their first values, so that the comm_open messages carry them and no
        # round of updates follows the display.
        self.header = widgets.HTML(_header(view))
        self.columns = {name: widgets.HTML(table, layout=widgets.Layout(width=COLUMN_WIDTHS[name]))
                        for name, table in _columns(view).items()}
        # One line kept for the flush's progress and a click's message, shown or not.
        self.footer = widgets.HTML(_footer(view, notice), layout=widgets.Layout(min_height="1.6em"))
        self.buttons: dict[str, widgets.Button] = {}
        enabled = _enabled(view)
        for action, (label, tip) in BUTTONS.items():
            button = widgets.Button(description=label, tooltip=tip, disabled=not enabled[action],
                                    layout=widgets.Layout(width="auto"))
            button.add_class(f"bugsnag-{action}")
            button.on_click(lambda _button, action=action: on_action(action))
            self.buttons[action] = button
            not_user_activity(button)  # the panel's clicks are not the user's work
        for name, widget in [("header", self.header), *self.columns.items(), ("footer", self.footer)]:
            widget.add_class(f"bugsnag-{name}")
        columns = widgets.HBox(list(self.columns.values()),
                               layout=widgets.Layout(flex_flow="row wrap", grid_gap="0 2em"))
        self.box = PanelBox(
            fallback,
            children=[self.header, columns, widgets.HBox(list(self.buttons.values())), self.footer],
            layout=widgets.Layout(
                border="1px solid var(--jp-border-color1, #ccc)", padding="4px 8px", width="fit-content"
            ),
        )
        self.box.add_class("bugsnag-panel")

    @property
    def closed(self) -> bool:
        return self.box.comm is None

    def show(self, view: PanelView, notice: str) -> None:
        for name, table in _columns(view).items():
            self.columns[name].value = table
        for action, enabled in _enabled(view).items():
            self.buttons[action].disabled = not enabled
        self.footer.value = _footer(view, notice)
        # The state badge last: once it says "paused", the buttons and figures already agree.
        self.header.value = _header(view)


def _header(view: PanelView) -> str:
    colour = DELIVERY_COLOURS.get(view.delivery_state, BADGE_COLOURS[view.state])
    return (
        "<b>BugSnag</b> "
        f"<span class='bugsnag-state' data-state='{view.state}' data-delivery='{view.delivery_state}'"
        f" style='background:{colour};"
        "color:white;border-radius:3px;padding:0 6px;margin-left:4px'>"
        f"{html.escape(view.title)}</span>"
    )


def _columns(view: PanelView) -> dict[str, str]:
    return {"session": _table("Session", view.session), "delivery": _table("Delivery", view.delivery),
            "settings": _table("Settings", view.settings)}


def _enabled(view: PanelView) -> dict[str, bool]:
    return {"start": view.can_start, "pause": view.can_pause, "resume": view.can_resume,
            "flush": view.can_flush}


def _footer(view: PanelView, notice: str) -> str:
    lines = [line for line in (view.flush, notice) if line]
    return "<br>".join(f"<small>{html.escape(line)}</small>" for line in lines)


def _table(heading: str, rows: Rows) -> str:
    if not rows:
        return ""
    body = "".join(
        f"<tr><td style='padding-right:1em;opacity:0.7;vertical-align:top'>{html.escape(label)}</td>"
        f"<td>{_value(label, value)}</td></tr>"
        for label, value in rows
    )
    return f"<div style='font-weight:bold'>{html.escape(heading)}</div><table>{body}</table>"


def _value(label: str, value: str) -> str:
    if label != "Last error":
        return html.escape(value)
    # Its lines are kept even when there is no error, so that one appearing moves nothing.
    return (
        f"<div class='bugsnag-last-error' style='line-height:1.3em;height:{1.3 * ERROR_LINES:.1f}em;"
        f"overflow-y:auto'>{html.escape(value)}</div>"
    )
