"""Error reports from a real kernel, read back from the real collector: frames that point into
the notebook, metadata, users, threads, callbacks, redaction, send_code and size."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path
from typing import Any

from tests.conftest import StartKernel
from tests.waits import events_of

WAIT = 10.0


def frames_of(event: Any, index: int = 0) -> list[dict[str, Any]]:
    frames: list[dict[str, Any]] = event.event["exceptions"][index]["stacktrace"]
    return frames


def test_a_function_from_one_cell_failing_when_called_from_another(
    start_kernel: StartKernel, collector: Any
) -> None:
    kernel = start_kernel()
    kernel.execute("def divide(a, b):\n    ratio = a / b\n    return ratio", cell_id="define")
    failed = kernel.execute("x = 1\ndivide(x, 0)", cell_id="call")
    assert failed.error_name == "ZeroDivisionError"
    [event] = events_of(collector, 1)
    frames = frames_of(event)
    assert [(f["file"], f["lineNumber"], f["method"], f["inProject"]) for f in frames] == [
        ("cell-define", 2, "divide", True),
        ("cell-call", 2, "<module>", True),
    ]
    assert frames[0]["code"] == {"1": "def divide(a, b):", "2": "    ratio = a / b", "3": "    return ratio"}
    [request] = collector.store.requests("events")
    assert "ipykernel_" not in request.body and "run_code" not in request.body
    body = event.event
    assert body["context"] == "In [3]"  # %load_ext was In [1]
    assert body["metaData"]["notebook"] == {
        "cellId": "call",
        "executionCount": 3,
        "cellSource": "x = 1\ndivide(x, 0)",
    }
    kernel_tab = body["metaData"]["kernel"]
    assert kernel_tab["id"] == Path(kernel.manager.connection_file).stem.removeprefix("kernel-")
    assert {"ipython", "ipykernel", "python"} <= set(kernel_tab)
    assert body["app"]["type"] == "jupyter" and body["app"]["inForeground"] is True
    assert body["app"]["duration"] >= body["app"]["durationInForeground"] >= 0
    device = body["device"]
    assert set(device["runtimeVersions"]) == {"python", "ipython", "ipykernel"}
    assert {"hostname", "osName", "osVersion", "time", "id"} <= set(device)


def test_the_same_failure_groups_the_same_way_every_run_and_every_kernel(
    start_kernel: StartKernel, collector: Any
) -> None:
    first = start_kernel()
    first.execute("values = []\nvalues[3]")
    first.execute("values = []\nvalues[3]")
    first.execute("def f():\n    return {}['k']", cell_id="helper")
    first.execute("f()")
    second = start_kernel()  # another pid, another temp directory, other execution counts
    second.execute("x = 0")
    second.execute("values = []\nvalues[3]")
    second.execute("def f():\n    return {}['k']", cell_id="helper")
    second.execute("f()")
    events = events_of(collector, 5)
    tops = {(e.error_class, frames_of(e)[0]["file"], frames_of(e)[0]["lineNumber"]) for e in events}
    assert len(tops) == 2
    assert ("KeyError", "cell-helper", 2) in tops
    [(_, index_file, line)] = [t for t in tops if t[0] == "IndexError"]
    assert index_file.startswith("cell-") and line == 2
    assert {e.event["context"] for e in events if e.error_class == "IndexError"} == {"In [2]", "In [3]"}


def test_frames_of_a_library_called_from_a_cell(start_kernel: StartKernel, collector: Any) -> None:
    kernel = start_kernel(name="project")
    (kernel.root / "helpers.py").write_text(
        "import json\n\n\ndef parse(text):\n    return json.loads(text)\n"
    )
    kernel.execute("import helpers\nhelpers.parse('{')", cell_id="use")
    [event] = events_of(collector, 1)
    assert event.error_class == "json.decoder.JSONDecodeError"
    frames = frames_of(event)
    shown = [(f["file"], f["inProject"]) for f in frames]
    assert shown[-2:] == [("helpers.py", True), ("cell-use", True)]
    library = shown[:-2]
    assert library and all(not in_project for _, in_project in library)
    assert {"json/decoder.py", "json/__init__.py"} <= {file for file, _ in library}
    assert frames[-2]["code"]["5"] == "    return json.loads(text)"
    assert not any("IPython" in f["file"] or "ipykernel" in f["file"] for f in frames)


def test_a_syntax_error_cell_is_one_frame_of_that_cell(start_kernel: StartKernel, collector: Any) -> None:
    kernel = start_kernel()
    kernel.execute("x = 1\ndef broken(:\n    pass", cell_id="syntax")
    [event] = events_of(collector, 1)
    assert event.error_class == "SyntaxError" and event.unhandled
    [frame] = frames_of(event)
    assert frame["file"] == "cell-syntax" and frame["lineNumber"] == 2 and frame["inProject"]
    assert frame["code"]["2"] == "def broken(:"


def test_a_chained_exception_lists_its_cause(start_kernel: StartKernel, collector: Any) -> None:
    kernel = start_kernel()
    kernel.execute(
        "try:\n    {}['missing']\nexcept KeyError as error:\n    raise ValueError('bad config') from error",
        cell_id="chain",
    )
    [event] = events_of(collector, 1)
    exceptions = event.event["exceptions"]
    assert [(e["errorClass"], e["message"]) for e in exceptions] == [
        ("ValueError", "bad config"),
        ("KeyError", "'missing'"),
    ]
    assert frames_of(event, 0)[0]["lineNumber"] == 4 and frames_of(event, 1)[0]["lineNumber"] == 2
    assert {frames_of(event, i)[0]["file"] for i in (0, 1)} == {"cell-chain"}


def test_an_exception_group_lists_its_members(start_kernel: StartKernel, collector: Any) -> None:
    kernel = start_kernel()
    kernel.execute("raise ExceptionGroup('batch failed', [ValueError('row 1'), TypeError('row 2')])")
    [event] = events_of(collector, 1)
    classes = [(e["errorClass"], e["message"]) for e in event.event["exceptions"]]
    assert classes == [
        ("ExceptionGroup", "batch failed (2 sub-exceptions)"),
        ("ValueError", "row 1"),
        ("TypeError", "row 2"),
    ]


def test_the_notebook_named_by_jpy_session_name(
    start_kernel: StartKernel, collector: Any, tmp_path: Path
) -> None:
    inside = start_kernel(name="nb", JPY_SESSION_NAME=str(tmp_path / "nb" / "reports" / "analysis.ipynb"))
    inside.execute("1/0", cell_id="c1")
    outside = start_kernel(name="elsewhere", JPY_SESSION_NAME="/srv/shared/outside.ipynb")
    outside.execute("1/0", cell_id="c2")
    unset = start_kernel(name="plain")
    unset.execute("1/0", cell_id="c3")
    first, second, third = events_of(collector, 3)
    assert frames_of(first)[0]["file"] == "reports/analysis.ipynb#cell-c1"
    assert first.event["metaData"]["notebook"]["path"] == "reports/analysis.ipynb"
    assert frames_of(second)[0]["file"] == "outside.ipynb#cell-c2"
    assert second.event["metaData"]["notebook"]["path"] == "outside.ipynb"
    assert frames_of(third)[0]["file"] == "cell-c3"
    assert "path" not in third.event["metaData"]["notebook"]


def test_a_thread_exception_between_cells(start_kernel: StartKernel, collector: Any) -> None:
    kernel = start_kernel(load=False)
    kernel.execute(
        "import threading, time\nseen = []\n"
        "threading.excepthook = lambda args: seen.append(args.exc_type.__name__)"
    )
    assert kernel.execute("%load_ext bugsnag_ipython").status == "ok"
    kernel.execute(
        "def work():\n    time.sleep(0.5)\n    raise RuntimeError('from a worker')\n"
        "worker = threading.Thread(target=work, name='loader')\nworker.start()",
        cell_id="spawn",
    )
    [event] = events_of(collector, 1)
    body = event.event
    assert event.error_class == "RuntimeError" and event.unhandled
    assert body["app"]["inForeground"] is False and body["app"]["durationInForeground"] == 0
    assert body["context"] == "Thread loader"
    assert body["metaData"]["thread"]["name"] == "loader"
    current = kernel.evaluate("__import__('bugsnag_ipython').current_session().id")
    assert event.session_id == current and event.session_unhandled == 1
    top = frames_of(event)[0]
    assert (top["file"], top["method"], top["lineNumber"]) == ("cell-spawn", "work", 3)
    assert kernel.evaluate("seen") == ["RuntimeError"]  # the hook before ours still ran


def test_a_discarding_callback_and_a_raising_callback(start_kernel: StartKernel, collector: Any) -> None:
    kernel = start_kernel()
    setup = kernel.execute(
        "import bugsnag_ipython, logging\n"
        "problems = []\n"
        "class Keep(logging.Handler):\n"
        "    def emit(self, record):\n"
        "        problems.append(record.getMessage())\n"
        "logging.getLogger('bugsnag_ipython').addHandler(Keep())\n"
        "def drop_key_errors(event):\n"
        "    return event['exceptions'][0]['errorClass'] != 'KeyError'\n"
        "def broken(event):\n"
        "    event['metaData']['touched'] = {'by': 'broken'}\n"
        "    raise RuntimeError('callback bug')\n"
        "bugsnag_ipython.add_on_error(drop_key_errors)\n"
        "bugsnag_ipython.add_on_error(broken)"
    )
    assert setup.status == "ok", setup.traceback
    kernel.execute("{}['dropped']")
    kernel.execute("raise ValueError('first')")
    kernel.execute("raise ValueError('second')")
    kernel.execute("bugsnag_ipython.remove_on_error(drop_key_errors)")
    kernel.execute("{}['kept']")
    events = events_of(collector, 3)
    assert kernel.flush() is True
    assert [(e.error_class, e.session_unhandled) for e in events] == [
        ("ValueError", 1),  # the dropped KeyError moved no counter
        ("ValueError", 2),
        ("KeyError", 3),
    ]
    assert all(e.event["metaData"]["touched"] == {"by": "broken"} for e in events)
    assert len(collector.store.events()) == 3
    assert sum("callback bug" in p for p in kernel.evaluate("problems")) == 1


def test_redaction_of_metadata_breadcrumbs_and_user(start_kernel: StartKernel, collector: Any) -> None:
    kernel = start_kernel()
    setup = kernel.execute(
        "import bugsnag_ipython\n"
        "bugsnag_ipython.add_metadata('db', {'password': 'hunter2', 'host': 'db.local', 'Auth_Token': 't'})\n"
        "bugsnag_ipython.leave_breadcrumb('login', {'API_KEY': 'k-123', 'user': 'ada'})\n"
        "bugsnag_ipython.set_user('42', 'ada@example.com', 'Ada')\n"
        "bugsnag_ipython.configure(redacted_keys=['password', 'token', 'api_key', 'email'])"
    )
    assert setup.status == "ok", setup.traceback
    kernel.execute("password = 'hunter2'\n1/0")
    [event] = events_of(collector, 1)
    body = event.event
    redacted = "[REDACTED]"
    assert body["metaData"]["db"] == {"password": redacted, "host": "db.local", "Auth_Token": redacted}
    [login] = [c for c in body["breadcrumbs"] if c["name"] == "login"]
    assert login["metaData"] == {"API_KEY": "[REDACTED]", "user": "ada"}
    assert body["user"] == {"id": "42", "email": "[REDACTED]", "name": "Ada"}
    # Redaction works on keys; source text is governed by send_code alone.
    assert frames_of(event)[0]["code"]["1"] == "password = 'hunter2'"


def test_send_code_off_sends_no_source_anywhere(start_kernel: StartKernel, collector: Any) -> None:
    kernel = start_kernel(name="private", BUGSNAG_SEND_CODE="false")
    (kernel.root / "private_helpers.py").write_text("def fail():\n    raise KeyError('x')  # helper_marker\n")
    kernel.execute("import private_helpers\ncell_marker = 1\nprivate_helpers.fail()")
    kernel.execute("syntax_marker(")
    kernel.execute("import json\nlibrary_marker = json.loads('{')")
    events_of(collector, 3)
    for request in collector.store.requests("events"):
        for marker in ("helper_marker", "cell_marker", "syntax_marker", "library_marker", "raw_decode("):
            assert marker not in request.body
        assert '"code"' not in request.body and "cellSource" not in request.body


def test_a_5_mb_metadata_string_is_trimmed_under_1_mb(start_kernel: StartKernel, collector: Any) -> None:
    kernel = start_kernel()
    kernel.execute("import bugsnag_ipython\nbugsnag_ipython.add_metadata('big', 'blob', 'x' * 5_000_000)")
    kernel.execute("1/0")
    [event] = events_of(collector, 1)
    [request] = collector.store.requests("events")
    assert request.status == 202 and len(request.body.encode()) < 1_000_000
    assert event.error_class == "ZeroDivisionError"
    assert event.event["metaData"]["big"]["blob"].endswith("CHARS TRUNCATED***")


def test_breadcrumbs_are_capped_and_logging_warnings_join_them(
    start_kernel: StartKernel, collector: Any
) -> None:
    kernel = start_kernel(BUGSNAG_MAX_BREADCRUMBS="5")
    for _ in range(8):
        kernel.execute("x = 1")
    logged = kernel.execute(
        "import logging\nlogging.getLogger('etl').warning('slow source')\n"
        "logging.getLogger('etl').info('not a breadcrumb')\nlogging.warning('still printed')"
    )
    assert "still printed" in logged.stderr  # loading changed nothing about logging's output
    kernel.execute("1/0")
    [event] = events_of(collector, 1)
    crumbs = event.event["breadcrumbs"]
    assert len(crumbs) == 5
    assert [c["type"] for c in crumbs] == ["process", "process", "log", "log", "process"]
    assert crumbs[2]["name"] == "slow source" and crumbs[2]["metaData"]["logger"] == "etl"
    assert crumbs[-1]["name"] == "In [10]" and crumbs[-1]["metaData"]["status"] == "ok"


def test_users_and_devices(start_kernel: StartKernel, collector: Any, tmp_path: Path) -> None:
    first = start_kernel()
    first.execute("1/0")
    second = start_kernel()
    second.execute("1/0")
    hub = start_kernel(JUPYTERHUB_USER="ada")
    hub.execute("1/0")
    hub.execute("import bugsnag_ipython\nbugsnag_ipython.set_user('u-7', name='Ada L.')\n1/0")
    one, two, three, four = events_of(collector, 4)
    device_id = one.event["device"]["id"]
    assert len(device_id) == 32 and {e.event["device"]["id"] for e in (two, three, four)} == {device_id}
    assert one.event["user"] == two.event["user"] == {"id": device_id}
    assert three.event["user"] == {"id": "ada"}
    assert four.event["user"] == {"id": "u-7", "name": "Ada L."}
    stored = tmp_path / "outbox" / "device-id"
    assert stored.read_text().strip() == device_id
    assert stat.S_IMODE(os.stat(stored).st_mode) == 0o600
    sessions = [json.loads(r.body) for r in collector.store.requests("sessions")]
    assert sessions and all(s["device"]["id"] == device_id for s in sessions)
