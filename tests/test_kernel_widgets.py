"""Failures outside a cell's own raise, in a real kernel: widget callbacks triggered by the
frontend's messages (sent as JupyterLab sends them), widget activity as the foreground, and the
event loop's exceptions. Read back from the real collector."""

from __future__ import annotations

import queue
import time
from typing import Any

from tests.conftest import StartKernel
from tests.kernel import Kernel
from tests.waits import events_of, sessions_of

WAIT = 10.0
CLICK = {"method": "custom", "content": {"event": "click"}}

WIDGETS = """\
import ipywidgets as widgets

button = widgets.Button(description="Refresh")
def refresh(_):
    raise RuntimeError("the refresh failed")
button.on_click(refresh)

slider = widgets.IntSlider(description="rows")
def resize(change):
    return [][change["new"]]
slider.observe(resize, "value")
print(button.model_id, slider.model_id)
"""


def send_to_widget(kernel: Kernel, model_id: str, data: dict[str, Any]) -> list[dict[str, Any]]:
    """A comm_msg from the frontend; the `error` messages the kernel showed while handling it."""
    message = kernel.client.session.msg("comm_msg", {"comm_id": model_id, "data": data})
    kernel.client.shell_channel.send(message)
    shown: list[dict[str, Any]] = []
    deadline = time.monotonic() + WAIT
    while time.monotonic() < deadline:
        try:
            msg = kernel.client.get_iopub_msg(timeout=0.5)
        except queue.Empty:
            continue
        if msg["parent_header"].get("msg_id") != message["header"]["msg_id"]:
            continue
        if msg["msg_type"] == "error":
            shown.append(msg["content"])
        elif msg["msg_type"] == "status" and msg["content"]["execution_state"] == "idle":
            return shown
    raise AssertionError("the kernel did not handle the widget message")


def move_to(value: int) -> dict[str, Any]:
    return {"method": "update", "state": {"value": value}, "buffer_paths": []}


def test_a_click_and_a_slider_move_whose_callbacks_fail_are_reported_as_shown(
    start_kernel: StartKernel, collector: Any
) -> None:
    kernel = start_kernel()
    button, slider = kernel.execute(WIDGETS, cell_id="dashboard").stdout.split()
    shown_click = send_to_widget(kernel, button, CLICK)
    shown_move = send_to_widget(kernel, slider, move_to(7))
    click, move = events_of(collector, 2)

    assert click.error_class == "RuntimeError" and click.event["unhandled"] is True
    assert click.event["context"] == 'Button click "Refresh"'
    top = click.event["exceptions"][0]["stacktrace"][0]
    assert (top["file"], top["lineNumber"], top["method"]) == ("cell-dashboard", 5, "refresh")
    assert top["inProject"] is True
    assert click.event["metaData"]["widget"]["action"] == "click"
    assert click.event["app"]["inForeground"] is True
    assert 'Button click "Refresh"' in [c["name"] for c in click.event["breadcrumbs"] if c["type"] == "user"]
    assert move.error_class == "IndexError" and move.event["context"] == 'IntSlider change "rows"'
    assert move.event["exceptions"][0]["stacktrace"][0]["file"] == "cell-dashboard"
    [launch] = sessions_of(collector)
    assert click.session_id == move.session_id == launch and move.session_unhandled == 2

    # What the user saw is what they see without the extension: the same error, the same lines.
    assert [e["ename"] for e in shown_click + shown_move] == ["RuntimeError", "IndexError"]
    kernel.execute("%unload_ext bugsnag_ipython")
    assert send_to_widget(kernel, button, CLICK) == shown_click
    [moved] = send_to_widget(kernel, slider, move_to(8))
    assert moved["traceback"] == shown_move[0]["traceback"]


def test_a_callback_failing_inside_a_cell_is_reported_once(start_kernel: StartKernel, collector: Any) -> None:
    kernel = start_kernel()
    kernel.execute(WIDGETS)
    clicked = kernel.execute("button.click()")
    assert clicked.status == "ok" and clicked.error_name == "RuntimeError"  # shown, as before
    kernel.execute("from ipywidgets import interact\ndef pick(i):\n    return [][i]\ninteract(pick, i=3);")
    again = kernel.execute(
        "def keep(_):\n    global failure\n    failure = ValueError('kept')\n    raise failure\n"
        "other = widgets.Button()\nother.on_click(keep)\nother.click()\nraise failure"
    )
    assert again.error_name == "ValueError"
    assert kernel.flush() is True
    events = events_of(collector, 3)
    assert [(e.error_class, e.event["context"]) for e in events] == [
        ("RuntimeError", 'Button click "Refresh"'),
        ("IndexError", 'interactive callback "pick"'),
        ("ValueError", "Button click"),
    ]
    assert events[1].event["metaData"]["notebook"]["executionCount"] == 4


def test_a_click_after_the_idle_timeout_starts_a_new_session_and_the_panel_does_not(
    start_kernel: StartKernel, collector: Any
) -> None:
    kernel = start_kernel(kernel_config="c.BugsnagIPython.background_timeout = 1.0")
    button, _ = kernel.execute(WIDGETS).stdout.split()
    kernel.execute("%bugsnag_session")
    pause = kernel.evaluate(
        "[w.model_id for w in __import__('ipywidgets').widgets.widget._instances.values()"
        " if 'bugsnag-pause' in getattr(w, '_dom_classes', ())][0]"
    )
    send_to_widget(kernel, button, CLICK)
    time.sleep(1.3)
    # The panel's Pause: not the user's activity, so it pauses the launch session and starts
    # none; the user's click after it is the return to the foreground, with a new session.
    # (Had the panel's click counted, it would have started the new session and paused it, and
    # this click's error would carry no session.)
    send_to_widget(kernel, pause, CLICK)
    send_to_widget(kernel, button, CLICK)
    first, second = events_of(collector, 2)
    assert collector.wait_for("sessions", 2, WAIT)
    launch, returned = sessions_of(collector)
    assert first.session_id == launch and second.session_id == returned
    assert second.session_unhandled == 1


def test_a_task_exception_never_retrieved_and_a_failing_callback(
    start_kernel: StartKernel, collector: Any
) -> None:
    # Loaded by the kernel's config, before the kernel's event loop runs.
    kernel = start_kernel(load=False, kernel_config="c.InteractiveShellApp.extensions = ['bugsnag_ipython']")
    kernel.execute("import asyncio, gc\nasync def load_prices():\n    raise KeyError('prices')",
                   cell_id="tasks")
    kernel.execute("task = asyncio.ensure_future(load_prices())")
    collected = kernel.execute("del task\ngc.collect()")
    assert "Task exception was never retrieved" in collected.stderr  # still shown
    kernel.execute("asyncio.get_running_loop().call_soon(lambda: 1 / 0)")
    task, callback = events_of(collector, 2)
    assert task.error_class == "KeyError" and task.event["unhandled"] is True
    assert task.event["context"] == "asyncio task load_prices"
    assert task.event["exceptions"][0]["stacktrace"][0]["file"] == "cell-tasks"
    assert callback.error_class == "ZeroDivisionError"
    assert callback.event["context"] == "asyncio callback <lambda>"
    assert "ipykernel_" not in str(callback.event["metaData"])


def test_reload_hooks_once_and_unload_puts_back_the_shell_the_kernel_and_the_loop(
    start_kernel: StartKernel, collector: Any
) -> None:
    kernel = start_kernel()
    button, _ = kernel.execute(WIDGETS).stdout.split()
    kernel.execute("%reload_ext bugsnag_ipython")
    send_to_widget(kernel, button, CLICK)
    assert kernel.flush() is True
    assert len(events_of(collector, 1)) == 1  # one event: the hooks were not stacked twice
    kernel.execute("%unload_ext bugsnag_ipython")
    restored = kernel.evaluate(
        "['showtraceback' in vars(get_ipython()),"
        " get_ipython().kernel.shell_handlers['comm_msg'] == get_ipython().kernel.comm_manager.comm_msg,"
        " __import__('asyncio').get_running_loop().get_exception_handler() is None]"
    )
    assert restored == [False, True, True]


CALLBACKS = """\
import ipywidgets as widgets

out = widgets.Output()
with out:
    raise KeyError("inside the output block")

query = widgets.Text(description="query")
def search(_):
    raise LookupError("the search failed")
query.on_submit(search)

canvas = widgets.DOMWidget()
def draw(widget, content, buffers):
    raise ValueError("the drawing failed")
canvas.on_msg(draw)

level = widgets.IntSlider(description="level")
def plot(level):
    if level:
        raise ArithmeticError("the plot failed")
shown = widgets.interactive_output(plot, {"level": level})

import comm
plain = comm.create_comm(target_name="plain")
received = []
def receive(message):
    received.append(message)
    raise OSError("a plain comm's handler failed")
plain.on_msg(receive)
print(query.model_id, canvas.model_id, level.model_id, plain.comm_id)
"""


def test_callbacks_in_an_output_block_on_submit_on_msg_and_interactive_output_are_reported(
    start_kernel: StartKernel, collector: Any
) -> None:
    kernel = start_kernel()
    made = kernel.execute(CALLBACKS, cell_id="callbacks")
    assert made.status == "ok", made.traceback  # the Output block showed its error, the cell went on
    query, canvas, level, plain = made.stdout.split()
    shown = send_to_widget(kernel, query, {"method": "custom", "content": {"event": "submit"}})
    shown += send_to_widget(kernel, canvas, {"method": "custom", "content": {"shape": "circle"}})
    # interactive_output shows its function's error in its own Output widget, not as an `error`
    # message of the comm_msg: it is counted by its event below.
    send_to_widget(kernel, level, move_to(3))
    # A plain comm's handler is no widget callback: the comm manager logs its failure, and that
    # is not reported.
    send_to_widget(kernel, plain, {"anything": 1})
    assert kernel.flush() is True
    events = events_of(collector, 4)
    assert [e.error_class for e in events] == ["KeyError", "LookupError", "ValueError", "ArithmeticError"]
    assert all(e.event["unhandled"] is True for e in events)
    output_block, submit, message, interactive = events
    assert output_block.event["metaData"]["notebook"]["cellId"] == "callbacks"
    assert submit.event["context"] == 'Text submit "query"'
    assert message.event["context"] == "DOMWidget message"
    # Run by a change of its control, the function's error is that change's.
    assert interactive.event["context"] == 'IntSlider change "level"'
    for event in (submit, message, interactive):
        top = event.event["exceptions"][0]["stacktrace"][0]
        assert top["file"] == "cell-callbacks" and top["inProject"] is True
    assert [e["ename"] for e in shown] == ["LookupError", "ValueError"]  # shown as before
    assert len(collector.store.events()) == 4
    assert kernel.evaluate("len(received)") == 1  # the plain comm's handler ran, and failed
