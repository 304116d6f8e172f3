"""Widget callbacks and widget activity, in process: a real IPython shell, real ipywidgets
(their comms go to comm's own manager, with no frontend), a client on an injected clock."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest

from bugsnag_ipython.client import Client
from bugsnag_ipython.report.events import CellRun
from bugsnag_ipython.sources.widgets import WidgetCallbacks, not_user_activity
from tests.sources.conftest import Clock, Recorder

widgets = pytest.importorskip("ipywidgets")
comm = pytest.importorskip("comm")

CLICK = {"method": "custom", "content": {"event": "click"}}


def frontend_message(widget: Any, data: dict[str, Any]) -> dict[str, Any]:
    """A comm_msg as the kernel hands it to its handler, as JupyterLab sends it."""
    return {
        "header": {"msg_type": "comm_msg"},
        "content": {"comm_id": widget.model_id, "data": data},
        "buffers": [],
    }


def failing_button(description: str = "Go") -> Any:
    button = widgets.Button(description=description)

    def fail(_: Any) -> None:
        raise RuntimeError("the click failed")

    button.on_click(fail)
    return button


@pytest.fixture
def kernel() -> Any:
    """What the widget source needs of a kernel: its shell handlers, here the real comm
    manager's handler, which delivers a message to the widget as ipykernel does."""
    return SimpleNamespace(shell_handlers={"comm_msg": comm.get_comm_manager().comm_msg})


@pytest.fixture
def hooked(client: Client, shell: Any, kernel: Any) -> Any:
    callbacks = WidgetCallbacks(client, shell, kernel)
    callbacks.install()
    def send(message: dict[str, Any]) -> None:
        kernel.shell_handlers["comm_msg"](None, [], message)

    yield SimpleNamespace(callbacks=callbacks, send=send)
    callbacks.uninstall()


def test_a_failing_click_is_one_unhandled_event_and_is_shown_as_before(
    hooked: Any, recorder: Recorder, capsys: pytest.CaptureFixture[str]
) -> None:
    button = failing_button()
    hooked.send(frontend_message(button, CLICK))
    shown_with = capsys.readouterr().out
    [event] = recorder.events()
    assert event["unhandled"] is True and event["severity"] == "error"
    assert event["exceptions"][0]["errorClass"] == "RuntimeError"
    assert event["context"] == 'Button click "Go"'
    assert event["metaData"]["widget"] == {
        "class": "Button", "description": "Go", "modelId": button.model_id, "action": "click",
    }
    assert event["app"]["inForeground"] is True
    assert event["session"]["events"] == {"handled": 0, "unhandled": 1}
    assert [c["name"] for c in event["breadcrumbs"] if c["type"] == "user"] == ['Button click "Go"']

    hooked.callbacks.uninstall()
    hooked.send(frontend_message(button, CLICK))
    assert capsys.readouterr().out == shown_with  # the same traceback, shown the same way
    assert "RuntimeError" in shown_with and "the click failed" in shown_with
    assert len(recorder.events()) == 1


def test_a_click_from_a_cell_and_interact_at_creation_are_reported(
    hooked: Any, shell: Any, recorder: Recorder
) -> None:
    button = failing_button("Run")
    shell.user_ns["button"] = button
    shell.run_cell("button.click()")

    def divide(x: int) -> float:
        return 1 / x

    shell.user_ns.update(interact=widgets.interact, divide=divide)
    shell.run_cell("interact(divide, x=0);")
    contexts = [(e["exceptions"][0]["errorClass"], e["context"]) for e in recorder.events()]
    assert contexts == [("RuntimeError", 'Button click "Run"'),
                        ("ZeroDivisionError", 'interactive callback "divide"')]


def test_a_cells_own_error_is_not_a_widget_event(hooked: Any, shell: Any, recorder: Recorder) -> None:
    shell.run_cell("1 / 0")  # IPython shows it through showtraceback too; the cell source reports it
    assert recorder.events() == []


def test_a_callback_error_that_the_cell_raises_again_is_reported_once(
    client: Client, clock: Clock, recorder: Recorder
) -> None:
    run = CellRun(3, "cell-a", "button.click(); raise failure", clock())
    client.cell_started(run)
    failure = RuntimeError("raised in the callback, then by the cell")
    assert client.notify_unhandled(failure, 'Button click "Go"', "widget", {"class": "Button"}) is True
    assert client.notify(failure, unhandled=True) is False
    assert client.notify(ValueError("another"), unhandled=True) is True
    client.cell_finished(failure)
    assert [e["exceptions"][0]["errorClass"] for e in recorder.events()] == ["RuntimeError", "ValueError"]


def test_a_click_after_the_background_timeout_starts_a_new_session(
    hooked: Any, client: Client, clock: Clock, recorder: Recorder
) -> None:
    button = widgets.Button(description="Next")
    slider = widgets.IntSlider(description="x")
    [launch] = recorder.sessions()
    clock.now += 29.9
    hooked.send(frontend_message(button, CLICK))
    clock.now += 29.9  # idle time is counted from the end of the last message
    hooked.send(frontend_message(slider, {"method": "update", "state": {"value": 3}, "buffer_paths": []}))
    assert recorder.sessions() == [launch]
    clock.now += 30.0
    hooked.send(frontend_message(button, CLICK))
    [_, second] = recorder.sessions()
    assert client.current_session().id == second  # type: ignore[union-attr]
    client.configure(background_timeout=5.0)  # the configured timeout, read at each message
    clock.now += 5.0
    hooked.send(frontend_message(slider, {"method": "update", "state": {"value": 4}, "buffer_paths": []}))
    assert len(recorder.sessions()) == 3


def test_what_is_not_the_users_activity_starts_no_session(
    hooked: Any, client: Client, clock: Clock, recorder: Recorder
) -> None:
    panel_button = widgets.Button(description="Pause")
    not_user_activity(panel_button)
    label = widgets.Label("x")
    clock.now += 100
    hooked.send(frontend_message(panel_button, CLICK))
    hooked.send(frontend_message(label, {"method": "request_state"}))
    assert len(recorder.sessions()) == 1
    # While a cell runs (an async cell awaiting a click), a message does not end its foreground.
    client.cell_started(CellRun(2, None, "await clicked", clock()))
    hooked.send(frontend_message(widgets.Button(), CLICK))
    assert client.tracker.in_foreground is True
    assert len(recorder.sessions()) == 2  # the cell's own return to the foreground


def test_unload_puts_back_what_it_wrapped(client: Client, shell: Any, kernel: Any) -> None:
    handler = kernel.shell_handlers["comm_msg"]
    callbacks = WidgetCallbacks(client, shell, kernel)
    callbacks.install()
    assert kernel.shell_handlers["comm_msg"] != handler and "showtraceback" in vars(shell)
    callbacks.uninstall()
    assert kernel.shell_handlers["comm_msg"] == handler and "showtraceback" not in vars(shell)
