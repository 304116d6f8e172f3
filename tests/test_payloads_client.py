"""Events as the client builds them, without a kernel: callbacks, metadata, users, devices,
breadcrumbs and release stages. Delivery is replaced by a recorder of what it was handed."""

from __future__ import annotations

import json
import logging
import os
import stat
from pathlib import Path
from typing import Any

import pytest

from bugsnag_ipython.client import CellRun, Client, ThreadInfo
from bugsnag_ipython.core.config import Configuration
from bugsnag_ipython.report.breadcrumbs import LogBreadcrumbs
from bugsnag_ipython.report.environment import DEVICE_ID_FILE, device_id
from tests.fakes import Clock, Recorder
from tests.payloads import API_KEY


@pytest.fixture
def make_client(tmp_path: Path, recorder: Recorder, clock: Clock, monkeypatch: pytest.MonkeyPatch) -> Any:
    monkeypatch.delenv("JUPYTERHUB_USER", raising=False)

    def make(**options: Any) -> Client:
        config = Configuration().replace(**{
            "api_key": API_KEY,
            "notify_endpoint": "http://127.0.0.1:9/notify",
            "sessions_endpoint": "http://127.0.0.1:9/sessions",
            "persistence_directory": str(tmp_path / "persistence"),
            **options,
        })
        client = Client(config, delivery=recorder, monotonic=clock, wall_clock=clock)  # type: ignore[arg-type]
        client.launch(in_background=True)
        return client

    return make


def error() -> ValueError:
    try:
        raise ValueError("bad value")
    except ValueError as caught:
        return caught


def test_callbacks_run_in_order_and_see_the_event_before_the_session(
    make_client: Any, recorder: Recorder
) -> None:
    client = make_client()
    seen: list[str] = []

    def first(event: dict[str, Any]) -> None:
        seen.append("first")
        assert "session" not in event
        event["metaData"]["extra"] = {"from": "callback"}

    client.on_error.add(first)
    client.on_error.add(lambda event: seen.append("second"))
    assert client.notify(error()) is True
    assert seen == ["first", "second"]
    [event] = recorder.events()
    assert event["metaData"]["extra"] == {"from": "callback"}
    assert event["session"]["events"] == {"handled": 1, "unhandled": 0}


def recursion_error(depth: int) -> ValueError:
    def chain(depth: int) -> None:
        if depth == 1:
            raise ValueError("bottom")
        chain(depth - 1)

    try:
        chain(depth)
    except ValueError as caught:
        return caught
    raise AssertionError("did not raise")


def test_a_callback_changing_one_frame_of_a_recursion_leaves_the_others(
    make_client: Any, recorder: Recorder
) -> None:
    client = make_client()

    def change_second_frame(event: dict[str, Any]) -> None:
        frame = event["exceptions"][0]["stacktrace"][1]
        frame["method"] = "changed"
        frame["code"].clear()

    client.on_error.add(change_second_frame)
    client.notify(recursion_error(20))
    client.on_error.remove(change_second_frame)
    client.notify(recursion_error(20))
    changed, unchanged = (event["exceptions"][0]["stacktrace"] for event in recorder.events())
    assert changed[1] == {**unchanged[1], "method": "changed", "code": {}}
    assert changed[2:] == unchanged[2:] and changed[0] == unchanged[0]
    chain = [frame for frame in unchanged if frame["method"].endswith("chain")]
    assert len(chain) == 20 and unchanged[:20] == chain
    assert all(frame["code"] for frame in chain)


def test_a_discarding_callback_sends_nothing_and_moves_no_counter(
    make_client: Any, recorder: Recorder
) -> None:
    client = make_client()
    later: list[str] = []
    client.on_error.add(lambda event: False)
    client.on_error.add(lambda event: later.append("ran"))
    assert client.notify(error(), unhandled=True) is False
    assert recorder.events() == [] and later == []
    session = client.current_session()
    assert session is not None and session.unhandled == 0
    assert not any(c["type"] == "error" for c in client.breadcrumbs.snapshot())


def test_a_raising_callback_is_logged_once_and_the_event_goes_on(
    make_client: Any, recorder: Recorder, caplog: pytest.LogCaptureFixture
) -> None:
    client = make_client()

    def broken(event: dict[str, Any]) -> None:
        event["context"] = "changed before failing"
        raise RuntimeError("callback bug")

    client.on_error.add(broken)
    with caplog.at_level(logging.WARNING, logger="bugsnag_ipython"):
        client.notify(error())
        client.notify(error())
    assert [e["context"] for e in recorder.events()] == ["changed before failing"] * 2
    assert sum("callback bug" in r.getMessage() for r in caplog.records) == 1


def test_removed_callbacks_no_longer_run(make_client: Any) -> None:
    client = make_client()
    calls: list[int] = []

    def callback(event: dict[str, Any]) -> None:
        calls.append(1)

    client.on_error.add(callback)
    client.on_error.remove(callback)
    client.on_error.remove(callback)  # twice: no error
    client.notify(error())
    assert calls == []


def test_a_callback_may_change_severity_and_says_so(make_client: Any, recorder: Recorder) -> None:
    client = make_client()
    client.on_error.add(lambda event: event.update(severity="info"))
    client.notify(error(), unhandled=True)
    [event] = recorder.events()
    assert event["severity"] == "info" and event["severityReason"] == {"type": "userCallbackSetSeverity"}


def test_a_callback_flipping_unhandled_is_marked_overridden_and_counted_as_flipped(
    make_client: Any, recorder: Recorder
) -> None:
    client = make_client()
    client.on_error.add(lambda event: event.update(unhandled=False))
    client.notify(error(), unhandled=True)
    client.on_error.add(lambda event: event.update(severity="info"))
    client.notify(error(), unhandled=True)
    first, second = recorder.events()
    assert first["unhandled"] is False and first["severity"] == "error"
    assert first["severityReason"] == {"type": "unhandledException", "unhandledOverridden": True}
    assert second["severityReason"] == {"type": "userCallbackSetSeverity", "unhandledOverridden": True}
    assert second["session"]["events"] == {"handled": 2, "unhandled": 0}  # as the callback said
    client.on_error = type(client.on_error)()
    client.notify(error(), unhandled=True)
    assert "unhandledOverridden" not in recorder.events()[2]["severityReason"]


def notify_from_user_code(client: Client) -> None:
    client.notify(ValueError("made, never raised"))  # the line the event should point at


def test_notify_of_a_never_raised_exception_carries_the_callers_stack(
    make_client: Any, recorder: Recorder
) -> None:
    client = make_client(project_root=str(Path(__file__).parent.parent))
    notify_from_user_code(client)
    [event] = recorder.events()
    frames = event["exceptions"][0]["stacktrace"]
    top = frames[0]
    assert (top["file"], top["method"]) == ("tests/test_payloads_client.py", "notify_from_user_code")
    assert "never raised" in top["code"][str(top["lineNumber"])]
    assert frames[1]["method"] == "test_notify_of_a_never_raised_exception_carries_the_callers_stack"
    assert not [f for f in frames if f["file"].startswith("bugsnag_ipython/")]  # none of ours
    assert all(f["inProject"] is False for f in frames[2:]) and top["inProject"] is True


def test_metadata_is_added_merged_and_cleared_like_the_other_notifiers(
    make_client: Any, recorder: Recorder
) -> None:
    client = make_client()
    client.metadata.add("data", {"rows": 120, "source": "s3"})
    client.metadata.add("data", "rows", 121)
    client.metadata.add("data", "source", None)  # None removes the key
    client.metadata.add("gone", "k", "v")
    client.metadata.clear("gone")
    client.metadata.add("other", {"a": 1, "b": 2})
    client.metadata.clear("other", "a")
    client.notify(error(), metadata={"call": {"x": 1}, "loose": 5})
    [event] = recorder.events()
    tabs = event["metaData"]
    assert tabs["data"] == {"rows": 121}
    assert "gone" not in tabs and tabs["other"] == {"b": 2}
    assert tabs["call"] == {"x": 1} and tabs["custom"] == {"loose": 5}
    assert set(tabs["kernel"]) >= {"python"}


def test_context_is_set_by_the_user_else_the_running_cell(
    make_client: Any, recorder: Recorder, clock: Clock
) -> None:
    client = make_client()
    client.cell_started(CellRun(7, "cell-a", "1/0", clock.now))
    client.notify(error(), unhandled=True)
    client.set_context("training loop")
    client.notify(error(), unhandled=True)
    client.set_context(None)
    client.notify(error(), unhandled=True, context="given")
    assert [e["context"] for e in recorder.events()] == ["In [7]", "training loop", "given"]
    notebook = recorder.events()[0]["metaData"]["notebook"]
    assert notebook == {"cellId": "cell-a", "executionCount": 7, "cellSource": "1/0"}


def test_the_user_is_set_user_else_jupyterhub_else_the_device(
    make_client: Any, recorder: Recorder, monkeypatch: pytest.MonkeyPatch
) -> None:
    client = make_client()
    client.notify(error())
    monkeypatch.setenv("JUPYTERHUB_USER", "hub-user")
    client.notify(error())
    client.set_user("42", "ada@example.com", "Ada")
    client.notify(error())
    client.set_user()
    client.notify(error())
    device, hub, explicit, back = recorder.events()
    assert device["user"] == {"id": device["device"]["id"]} and len(device["device"]["id"]) == 32
    assert hub["user"] == {"id": "hub-user"}
    assert explicit["user"] == {"id": "42", "email": "ada@example.com", "name": "Ada"}
    assert back["user"] == {"id": "hub-user"}


def test_the_device_id_is_made_once_and_kept_private(tmp_path: Path) -> None:
    directory = tmp_path / "cache" / "bugsnag"
    first = device_id(str(directory))
    assert device_id(str(directory)) == first
    assert stat.S_IMODE(os.stat(directory).st_mode) == 0o700
    assert stat.S_IMODE(os.stat(directory / DEVICE_ID_FILE).st_mode) == 0o600
    (directory / DEVICE_ID_FILE).write_text("damaged")
    replaced = device_id(str(directory))
    assert replaced != first and device_id(str(directory)) == replaced


def test_an_unwritable_directory_still_gives_an_id(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    assert len(device_id(str(blocker / "sub"))) == 32


def test_the_device_and_app_facts(make_client: Any, recorder: Recorder, clock: Clock) -> None:
    client = make_client(app_version="1.2.3", release_stage="staging")
    clock.now += 5
    client.notify(error())  # between cells
    client.cell_started(CellRun(2, None, "x", clock.now))
    clock.now += 0.25
    client.notify(error())
    between, during = recorder.events()
    assert between["app"] == {"type": "jupyter", "releaseStage": "staging", "version": "1.2.3",
                              "duration": 5000, "durationInForeground": 0, "inForeground": False}
    assert during["app"]["durationInForeground"] == 250 and during["app"]["inForeground"] is True
    device = during["device"]
    assert {"hostname", "osName", "osVersion", "runtimeVersions", "time", "id"} <= set(device)
    assert device["runtimeVersions"]["python"]


def test_a_thread_exception_is_unhandled_and_names_the_thread(make_client: Any, recorder: Recorder) -> None:
    client = make_client()
    client.notify_thread_exception(error(), ThreadInfo("worker-1", 99, True))
    [event] = recorder.events()
    assert event["unhandled"] is True and event["severityReason"] == {"type": "unhandledException"}
    assert event["context"] == "Thread worker-1"
    assert event["metaData"]["thread"] == {"name": "worker-1", "id": 99, "daemon": True}
    assert event["session"]["events"]["unhandled"] == 1


def test_breadcrumbs_are_capped_oldest_first_and_include_sessions_and_errors(
    make_client: Any, recorder: Recorder, clock: Clock
) -> None:
    client = make_client(max_breadcrumbs=5)
    for n in range(1, 9):
        client.cell_started(CellRun(n, None, "x", clock.now))
        client.cell_finished(None)
    client.pause_session()
    client.resume_session()
    client.notify(error())
    client.notify(error())
    crumbs = recorder.events()[-1]["breadcrumbs"]
    assert len(crumbs) == 5
    assert [(c["type"], c["name"]) for c in crumbs] == [
        ("process", "In [7]"), ("process", "In [8]"), ("state", "Session paused"),
        ("state", "Session resumed"), ("error", "ValueError"),
    ]


def test_cells_finished_between_events_join_the_trail_in_order(
    make_client: Any, recorder: Recorder, clock: Clock
) -> None:
    client = make_client(max_breadcrumbs=6)
    for n in range(1, 4):
        client.cell_started(CellRun(n, None, "x", clock.now))
        clock.now += 0.25
        client.notify(error(), unhandled=True)
        client.cell_finished(error())
        client.leave_breadcrumb(f"after {n}")
    client.notify(error())
    names = [(c["type"], c["name"]) for c in recorder.events()[-1]["breadcrumbs"]]
    assert names == [
        ("error", "ValueError"), ("process", "In [2]"), ("manual", "after 2"),
        ("error", "ValueError"), ("process", "In [3]"), ("manual", "after 3"),
    ]
    cells = [c for c in recorder.events()[-1]["breadcrumbs"] if c["type"] == "process"]
    assert [c["metaData"] for c in cells] == [{"durationMs": 250, "status": "error"}] * 2


def test_a_huge_trail_is_trimmed_under_the_limit_keeping_the_exception(
    make_client: Any, recorder: Recorder
) -> None:
    from bugsnag_ipython.report.trimming import MAX_PAYLOAD_BYTES

    client = make_client(max_breadcrumbs=100)
    for n in range(100):
        client.leave_breadcrumb(f"big {n}", {"blob": "x" * 9_990, "n": n})
    for _ in range(2):  # the second reads breadcrumbs whose redacted forms were made already
        client.notify(recursion_error(20))
    for envelope in recorder.envelopes[-2:]:
        assert len(envelope.body) <= MAX_PAYLOAD_BYTES
        [event] = json.loads(envelope.body)["events"]
        assert event["exceptions"][0]["errorClass"] == "ValueError"
        assert len(event["exceptions"][0]["stacktrace"]) == 21
        crumbs = event["breadcrumbs"]
        assert crumbs[0]["name"].startswith("Removed, along with")
        assert crumbs[-1]["name"] == ("ValueError" if envelope is recorder.envelopes[-1] else "big 99")


def test_discarded_classes_are_matched_by_name_module_name_or_base(make_client: Any) -> None:
    class NotebookError(LookupError):
        pass

    client = make_client(discard_classes=("LookupError",))
    assert not client.should_report(NotebookError())
    assert not client.should_report(KeyError("k"))
    assert client.should_report(ValueError())
    client.configure(discard_classes=(f"{__name__}.error",))
    assert client.should_report(NotebookError())  # a function of that name is not a class
    client.configure(discard_classes=(f"{NotebookError.__module__}.{NotebookError.__qualname__}",))
    assert not client.should_report(NotebookError())
    assert client.should_report(KeyError("k"))


def test_disabled_release_stages_send_nothing(make_client: Any, recorder: Recorder) -> None:
    client = make_client(release_stage="development", enabled_release_stages=("production",))
    assert client.notify(error()) is False
    assert recorder.envelopes == []


def test_send_code_off_leaves_the_cell_source_out(make_client: Any, recorder: Recorder, clock: Clock) -> None:
    client = make_client(send_code=False)
    client.cell_started(CellRun(3, "id", "very_private_source()", clock.now))
    client.notify(error(), unhandled=True)
    assert b"very_private_source" not in recorder.envelopes[-1].body
    assert b'"code"' not in recorder.envelopes[-1].body


def test_warnings_from_logging_become_breadcrumbs_without_changing_logging(
    make_client: Any, recorder: Recorder
) -> None:
    client = make_client()
    hook = LogBreadcrumbs(client.leave_breadcrumb)
    before = logging.getLogRecordFactory()
    root_handlers = list(logging.getLogger().handlers)
    hook.install()
    try:
        logging.getLogger("app.io").warning("disk %s full", "almost")
        logging.getLogger("app.io").info("not a breadcrumb")
        logging.getLogger("bugsnag_ipython").warning("about ourselves")
        # The kernel's own machinery talking to its frontend is not the notebook's story.
        logging.getLogger("Comm").error("No such comm target registered: %s", "jupyter.widget.control")
        logging.getLogger("ipykernel.comm").error("No such comm target registered: x")
        logging.getLogger("traitlets").warning("Config option not recognized")
        logging.getLogger("tornado.general").warning("Uncaught exception in ZMQStream callback")
        logging.getLogger("ipykernelish").warning("a library whose name only starts alike")
        assert logging.getLogger().handlers == root_handlers  # basicConfig still works
    finally:
        hook.uninstall()
    assert logging.getLogRecordFactory() is before
    logging.getLogger("app.io").warning("after unload")
    client.notify(error())
    logs = [c for c in recorder.events()[0]["breadcrumbs"] if c["type"] == "log"]
    assert [c["metaData"]["logger"] for c in logs] == ["app.io", "ipykernelish"]
    assert logs[0] == {
        "timestamp": logs[0]["timestamp"], "name": "disk almost full", "type": "log",
        "metaData": {"logLevel": "WARNING", "logger": "app.io", "message": "disk almost full"},
    }


def test_breadcrumbs_are_redacted_even_when_left_before_the_keys_changed(
    make_client: Any, recorder: Recorder
) -> None:
    client = make_client()
    client.leave_breadcrumb("login", {"user_email": "a@b.c", "ok": True})
    client.notify(error())
    client.configure(redacted_keys=("email",))
    client.notify(error())
    first, second = (e["breadcrumbs"][-2 if i else -1] for i, e in enumerate(recorder.events()))
    assert first["metaData"]["user_email"] == "a@b.c"
    assert second["metaData"] == {"user_email": "[REDACTED]", "ok": True}


def test_the_trails_breadcrumbs_reach_the_wire_whole_and_a_callbacks_change_stays_in_its_event(
    make_client: Any, recorder: Recorder
) -> None:
    client = make_client(redacted_keys=("token",))
    client.leave_breadcrumb("café ☕ \u2028", {"ratio": 1.5, "nested": {"token": "t", "list": [1, None]}})
    client.notify(error())

    def rename(event: dict[str, Any]) -> None:
        event["breadcrumbs"][-2]["name"] = "renamed"

    client.on_error.add(rename)
    client.notify(error())
    client.on_error.remove(rename)
    client.notify(error())
    first, renamed, third = recorder.events()
    left = {"type": "manual", "name": "café ☕ \u2028",
            "metaData": {"ratio": 1.5, "nested": {"token": "[REDACTED]", "list": [1, None]}}}
    assert {k: v for k, v in first["breadcrumbs"][-1].items() if k != "timestamp"} == left
    assert renamed["breadcrumbs"][-2]["name"] == "renamed"
    assert third["breadcrumbs"][-3] == first["breadcrumbs"][-1]
    assert [c["name"] for c in third["breadcrumbs"][-2:]] == ["ValueError", "ValueError"]


def test_an_event_held_before_its_key_was_set_is_sent_without_that_key_in_it(
    make_client: Any, recorder: Recorder
) -> None:
    client = make_client(api_key=None)
    key = "feedfacefeedfacefeedfacefeedface"
    client.leave_breadcrumb(f"pasted {key}")
    client.notify(ValueError(f"the key {key} was refused"))
    assert recorder.envelopes == []  # held: no key yet

    client.configure(api_key=key)

    [body] = [e.body.decode() for e in recorder.envelopes if e.kind == "event"]
    assert body.count(key) == 1 and json.loads(body)["apiKey"] == key
    [event] = recorder.events()
    assert event["exceptions"][0]["message"] == "the key [REDACTED] was refused"
    assert event["breadcrumbs"][-1]["name"] == "pasted [REDACTED]"


def test_event_payloads_join_into_one_with_every_event_in_order() -> None:
    from bugsnag_ipython.report.payloads import encode, event_payload, join_events

    notifier = {"name": "Bugsnag IPython", "version": "1", "url": "https://example.com"}
    bodies = [encode(event_payload("k" * 32, notifier, [{"n": n, "events": [n]}])) for n in range(3)]
    other = encode(event_payload("o" * 32, notifier, [{"n": 9}]))
    joined, count = join_events([*bodies, other, bodies[0]])
    assert count == 3  # up to the payload for another key
    events = [{"n": n, "events": [n]} for n in range(3)]
    assert json.loads(joined) == event_payload("k" * 32, notifier, events)
    assert join_events([bodies[1]]) == (bodies[1], 1)
