"""Exceptions to BugSnag frames, without a kernel: cells, libraries, hidden frames, chains."""

from __future__ import annotations

import json
import linecache
import os
from pathlib import Path

import pytest

from bugsnag_ipython.report.cells import CellMap, CellRef, NotebookRef, notebook_ref, source_identity
from bugsnag_ipython.report.stacktrace import FrameContext, exception_entries, window

CELL_FILE = "/tmp/ipykernel_4242/123456.py"


class FakeCells:
    """A CellMap over code compiled here under a cell's file name."""

    def __init__(self, notebook: str | None = None) -> None:
        self.cells: dict[str, CellRef] = {}
        self.notebook = notebook

    def add(self, filename: str, source: str, identity: str) -> dict[str, object]:
        lines = tuple(source.splitlines(keepends=True))
        linecache.cache[filename] = (len(source), None, list(lines), filename)
        self.cells[filename] = CellRef(identity, lines, 3)
        namespace: dict[str, object] = {}
        exec(compile(source, filename, "exec"), namespace)
        return namespace

    def __call__(self, filename: str) -> CellRef | None:
        return self.cells.get(filename)

    def notebook_path(self) -> str | None:
        return self.notebook


def raised(function: object) -> BaseException:
    try:
        function()  # type: ignore[operator]
    except BaseException as error:
        return error
    raise AssertionError("did not raise")


def context(cells: FakeCells | None = None, root: str | None = None, **kwargs: object) -> FrameContext:
    return FrameContext(resolve_cell=cells or CellMap(), project_root=root, **kwargs)  # type: ignore[arg-type]


def test_a_cell_frame_names_the_notebook_and_cell_and_its_line_within_the_cell() -> None:
    cells = FakeCells()
    namespace = cells.add(CELL_FILE, "x = 1\n\ndef fail():\n    return 1 / 0\n", "abc")
    error = raised(namespace["fail"])
    notebook = NotebookRef("work/analysis.ipynb", "/home/me/work")
    [entry] = exception_entries(error, context(cells, notebook=notebook))
    top = entry["stacktrace"][0]
    assert top == {
        "file": "work/analysis.ipynb#cell-abc",
        "lineNumber": 4,
        "method": "fail",
        "inProject": True,
        "code": {"1": "x = 1", "2": "", "3": "def fail():", "4": "    return 1 / 0"},
    }
    assert "ipykernel" not in json.dumps(entry)


def test_without_a_notebook_the_cell_is_named_alone() -> None:
    cells = FakeCells()
    namespace = cells.add(CELL_FILE, "def fail():\n    raise KeyError('k')\n", "ffff")
    [entry] = exception_entries(raised(namespace["fail"]), context(cells))
    assert entry["stacktrace"][0]["file"] == "cell-ffff"
    assert entry["errorClass"] == "KeyError"


def test_a_deep_recursion_lists_every_frame_innermost_first_each_its_own() -> None:
    cells = FakeCells()
    source = (
        "def chain(depth):\n    if depth == 1:\n        raise ValueError('bottom')\n"
        "    return chain(depth - 1)\n"
    )
    namespace = cells.add(CELL_FILE, source, "deep")
    [entry] = exception_entries(raised(lambda: namespace["chain"](20)), context(cells))
    chain = [frame for frame in entry["stacktrace"] if frame["method"] == "chain"]
    assert len(chain) == 20
    assert entry["stacktrace"][:20] == chain  # the innermost first, then its 19 callers
    assert [frame["lineNumber"] for frame in chain] == [3] + [4] * 19
    assert all(frame["file"] == "cell-deep" and frame["inProject"] for frame in chain)
    # The same line twice is two frames: changing one (as a callback may) leaves the other.
    chain[1]["method"] = "changed"
    chain[1]["code"]["4"] = "changed"
    assert chain[2]["method"] == "chain" and chain[2]["code"]["4"] == "    return chain(depth - 1)"


def test_library_frames_are_not_in_project_and_are_named_from_the_library_root() -> None:
    error = raised(lambda: json.loads("{"))
    [entry] = exception_entries(error, context(root=os.getcwd()))
    files = [frame["file"] for frame in entry["stacktrace"]]
    assert "json/decoder.py" in files and "json/__init__.py" in files
    library = [f for f in entry["stacktrace"] if f["file"].startswith("json/")]
    assert library and not any(f["inProject"] for f in library)
    this_test = [f for f in entry["stacktrace"] if f["file"].endswith("test_stacktrace.py")]
    assert this_test and all(f["inProject"] for f in this_test)
    assert this_test[0]["file"] == "tests/report/test_stacktrace.py"  # relative to the project root


def test_a_file_outside_the_project_and_libraries_is_not_in_project(tmp_path: Path) -> None:
    module = tmp_path / "elsewhere.py"
    module.write_text("def fail():\n    raise ValueError('x')\n")
    namespace: dict[str, object] = {}
    exec(compile(module.read_text(), str(module), "exec"), namespace)
    [entry] = exception_entries(raised(namespace["fail"]), context(root=str(tmp_path / "project")))
    top = entry["stacktrace"][0]
    assert top["file"] == str(module) and top["inProject"] is False
    assert top["code"] == {"1": "def fail():", "2": "    raise ValueError('x')"}


def test_frames_that_hide_themselves_are_left_out() -> None:
    def helper() -> None:
        __tracebackhide__ = True
        raise RuntimeError("from a helper")

    def caller() -> None:
        helper()

    [entry] = exception_entries(raised(caller), context())
    methods = [frame["method"] for frame in entry["stacktrace"]]
    assert not any(m.endswith("helper") for m in methods)
    assert any(m.endswith("caller") for m in methods)


def test_ipython_machinery_frames_are_left_out_but_kept_when_the_error_is_raised_inside() -> None:
    from IPython.core.interactiveshell import InteractiveShell
    from IPython.utils import path as ipython_path

    shell = InteractiveShell.instance()
    try:
        shell.run_cell("def fail():\n    1/0\nfail()", store_history=False)
        error = shell.last_execution_result.error_in_exec if shell.last_execution_result else None
        assert isinstance(error, ZeroDivisionError)
        [entry] = exception_entries(error, context())
        assert not any("IPython" in f["file"] for f in entry["stacktrace"])
        assert [f["method"] for f in entry["stacktrace"]] == ["fail", "<module>"]

        inner = raised(lambda: ipython_path.ensure_dir_exists(__file__))  # raises inside IPython
        [entry] = exception_entries(inner, context())
        assert entry["stacktrace"][0]["file"].startswith("IPython/")
        assert entry["stacktrace"][0]["inProject"] is False
    finally:
        InteractiveShell.clear_instance()


def test_a_syntax_error_in_a_cell_is_one_frame_of_the_cell() -> None:
    cells = FakeCells()
    source = "x = 1\ndef broken(:\n    pass\n"
    cells.cells[CELL_FILE] = CellRef("syn", tuple(source.splitlines(keepends=True)))
    error = raised(lambda: compile(source, CELL_FILE, "exec"))
    [entry] = exception_entries(error, context(cells))
    assert entry["errorClass"] == "SyntaxError"
    assert entry["stacktrace"] == [
        {
            "file": "cell-syn",
            "lineNumber": 2,
            "method": "<module>",
            "inProject": True,
            "code": {"1": "x = 1", "2": "def broken(:", "3": "    pass"},
        }
    ]


def test_a_syntax_error_elsewhere_keeps_the_frames_that_compiled_it() -> None:
    error = raised(lambda: compile("1 +", "<generated>", "exec"))
    [entry] = exception_entries(error, context())
    first, *rest = entry["stacktrace"]
    assert first["file"] == "<generated>" and first["code"] == {"1": "1 +"}
    assert rest and rest[0]["method"].endswith("<lambda>")


def test_causes_and_contexts_follow_the_raised_exception() -> None:
    def chained() -> None:
        try:
            {}["missing"]
        except KeyError as error:
            raise ValueError("bad input") from error

    def implicit() -> None:
        try:
            int("not a number")
        except ValueError:
            raise RuntimeError("while handling") from None

    entries = exception_entries(raised(chained), context())
    assert [(e["errorClass"], e["message"]) for e in entries] == [
        ("ValueError", "bad input"),
        ("KeyError", "'missing'"),
    ]
    assert [e["errorClass"] for e in exception_entries(raised(implicit), context())] == ["RuntimeError"]


def test_an_exception_group_lists_its_members_after_it() -> None:
    def grouped() -> None:
        raise ExceptionGroup("several", [ValueError("one"), TypeError("two")])

    entries = exception_entries(raised(grouped), context())
    assert [e["errorClass"] for e in entries] == ["ExceptionGroup", "ValueError", "TypeError"]


def test_send_code_off_sends_no_source_line() -> None:
    cells = FakeCells()
    namespace = cells.add(CELL_FILE, "def fail():\n    secret_source_line = 1 / 0\n", "c")
    entries = exception_entries(raised(namespace["fail"]), context(cells, send_code=False))
    syntax = exception_entries(raised(lambda: compile("oops(", "<x>", "exec")), context(send_code=False))
    text = json.dumps(entries + syntax)
    assert "secret_source_line" not in text and "oops" not in text and '"code"' not in text


def test_exception_classes_defined_in_modules_carry_the_module() -> None:
    [entry] = exception_entries(raised(lambda: json.loads("x")), context())
    assert entry["errorClass"] == "json.decoder.JSONDecodeError"


@pytest.mark.parametrize(
    ("line", "expected"),
    [(1, range(1, 8)), (5, range(2, 9)), (10, range(4, 11)), (11, range(0))],
)
def test_a_code_window_is_up_to_seven_lines_around_the_line(line: int, expected: range) -> None:
    lines = [f"line {n}\n" for n in range(1, 11)]
    assert list(window(lines, line)) == [str(n) for n in expected]


def test_long_source_lines_are_cut() -> None:
    assert len(window(["x" * 5000 + "\n"], 1)["1"]) == 200


def test_the_notebook_is_named_relative_to_the_project_root_else_by_its_base_name(tmp_path: Path) -> None:
    inside = notebook_ref(str(tmp_path / "sub" / "a.ipynb"), str(tmp_path))
    outside = notebook_ref("/elsewhere/b.ipynb", str(tmp_path))
    assert inside is not None and inside.path == "sub/a.ipynb"
    assert inside.directory == str((tmp_path / "sub").resolve())
    assert outside is not None and outside.path == "b.ipynb"
    assert notebook_ref(None, str(tmp_path)) is None


def test_a_cell_without_an_id_is_named_by_a_hash_of_its_source() -> None:
    assert source_identity("1/0") == source_identity("1/0") != source_identity("1/1")
    assert len(source_identity("x")) == 12


def test_the_notebook_path_comes_from_the_session_name_then_the_kernel_variables() -> None:
    from bugsnag_ipython.report.cells import notebook_path

    both = {"__session__": "/a/session.ipynb", "__vsc_ipynb_file__": "/a/vscode.ipynb"}
    assert notebook_path({"JPY_SESSION_NAME": "/a/env.ipynb"}, both) == "/a/env.ipynb"
    assert notebook_path({}, both) == "/a/session.ipynb"
    assert notebook_path({"JPY_SESSION_NAME": " "}, {"__vsc_ipynb_file__": "/a/vscode.ipynb"}) == (
        "/a/vscode.ipynb"
    )
    assert notebook_path({}, {"__session__": 3}) is None


def test_the_cell_index_names_cells_by_frontend_id_else_by_source() -> None:
    from types import SimpleNamespace

    from bugsnag_ipython.report.cells import CellIndex

    with_id, without_id = "/tmp/ipykernel_1/111.py", "/tmp/ipykernel_1/222.py"
    for name, source in ((with_id, "a = 1\n"), (without_id, "b = 2\n")):
        linecache.cache[name] = (len(source), None, [source], name)
    shell = SimpleNamespace(compile=SimpleNamespace(_filename_map={with_id: 4, without_id: 5}), user_ns={})
    index = CellIndex(shell)
    index.record(4, "frontend-id")
    first = index(with_id)
    assert first is not None and first.identity == "frontend-id" and first.execution_count == 4
    second = index(without_id)
    assert second is not None and second.identity == source_identity("b = 2\n")
    other_kernel = index("/tmp/ipykernel_999/333.py")  # not this shell's, still a cell
    assert other_kernel is not None and other_kernel.execution_count is None
    assert index(__file__) is None
