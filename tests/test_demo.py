"""`make demo`'s notebook runs to the end in a real kernel, and the report shows what it did."""

from __future__ import annotations

from pathlib import Path

import nbformat

from bugsnag_ipython.collector import format_report
from bugsnag_ipython.demo import run_demo

NOTEBOOK = Path(__file__).resolve().parent.parent / "notebooks" / "demo.ipynb"


def test_the_demo_notebook_runs_and_the_report_counts_its_sessions(tmp_path: Path) -> None:
    result = run_demo(NOTEBOOK, tmp_path / "demo")
    assert result.seconds < 90
    [group] = result.report.releases
    assert (group.app_version, group.release_stage) == ("1.0.0", "demo")
    # The launch session (with the FileNotFoundError) and the one after the idle gap.
    assert group.sessions == 2 and group.sessions_with_unhandled == 1
    assert group.stability_text == "50.0%"
    assert group.unhandled_events == 2 and group.handled_events == 1
    assert group.events_outside_sessions == 1  # the KeyError while paused
    errors = {e.error_class for e in group.top_errors}
    assert errors == {"FileNotFoundError", "KeyError", "ValueError"}
    assert "50.0%" in format_report(result.report)

    executed = nbformat.read(result.executed, as_version=4)
    outputs = [o for cell in executed.cells if cell.cell_type == "code" for o in cell.outputs]
    shown = "".join(o.get("text", "") for o in outputs)
    assert "new session: True" in shown
    assert "Everything was delivered." in shown
    raised = [o["ename"] for o in outputs if o["output_type"] == "error"]
    assert raised == ["FileNotFoundError", "KeyError"]  # only the cells tagged raises-exception
