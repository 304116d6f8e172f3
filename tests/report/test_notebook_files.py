"""Notebook files nobody vouches for are read under one rule, each on its own: what cannot be
read as a regular notebook of sane size is passed over, at once, and the others still count.
(The same files beside real runs are in tests/test_kernel_bad_notebook_files.py.)"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from bugsnag_ipython.report import notebook_files
from bugsnag_ipython.report.notebook_files import folder_notebooks, read_bounded, read_notebook
from bugsnag_ipython.report.run import HeadlessRun
from bugsnag_ipython.sources.headless import dashboard_notebook, voila_kernel

NOTEBOOK = {"nbformat": 4, "nbformat_minor": 5, "metadata": {},
            "cells": [{"cell_type": "code", "id": "use", "source": "answer = 42", "metadata": {},
                       "outputs": [], "execution_count": None}]}


def test_what_is_no_regular_file_is_not_read(tmp_path: Path) -> None:
    os.mkfifo(tmp_path / "pipe.ipynb")  # no writer: a blocking open would never return
    (tmp_path / "dir.ipynb").mkdir()
    (tmp_path / "loop.ipynb").symlink_to("loop.ipynb")
    (tmp_path / "zeros.ipynb").symlink_to("/dev/zero")
    (tmp_path / "gone.ipynb").symlink_to("nowhere.ipynb")

    for name in ("pipe", "dir", "loop", "zeros", "gone", "missing"):
        assert read_bounded(str(tmp_path / f"{name}.ipynb"), 1000) is None, name


def test_a_file_over_the_limit_is_not_read(tmp_path: Path) -> None:
    path = tmp_path / "a.ipynb"
    path.write_bytes(b"x" * 11)

    assert read_bounded(str(path), 10) is None
    assert read_bounded(str(path), 11) == b"x" * 11


def test_a_link_is_opened_only_when_followed(tmp_path: Path) -> None:
    (tmp_path / "real.ipynb").write_text("{}")
    (tmp_path / "link.ipynb").symlink_to("real.ipynb")

    assert read_bounded(str(tmp_path / "link.ipynb"), 100) == b"{}"
    assert read_bounded(str(tmp_path / "link.ipynb"), 100, follow=False) is None


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads a file of mode 000")
def test_an_unreadable_file_is_passed_over(tmp_path: Path) -> None:
    path = tmp_path / "a.ipynb"
    path.write_text(json.dumps(NOTEBOOK))
    path.chmod(0)

    assert read_notebook(str(path)) is None


@pytest.mark.parametrize(
    "raw",
    [b"[" * 100_000 + b"]" * 100_000, b'{"a": ' * 50_000 + b"1" + b"}" * 50_000,
     b"\xff\xfe\x00garbage", b"1" * 5000, b"{not json"],
)
def test_hostile_json_is_no_document(raw: bytes, tmp_path: Path) -> None:
    path = tmp_path / "a.ipynb"
    path.write_bytes(raw)
    assert read_notebook(str(path)) is None


def test_cells_of_the_wrong_shape_are_passed_over(tmp_path: Path) -> None:
    document = {**NOTEBOOK, "metadata": {"papermill": ["not", "a", "mapping"]},
                "cells": [{"cell_type": "code", "source": [1, {"a": 2}, "b = 1"], "id": 3,
                           "metadata": {"tags": "not a list"}},
                          "a cell that is a string", *NOTEBOOK["cells"]]}
    path = tmp_path / "a.ipynb"
    path.write_text(json.dumps(document))

    notebook = read_notebook(str(path))

    assert notebook is not None
    assert notebook.cells == (("b = 1", None), ("answer = 42", "use"))
    assert notebook.papermill == {}


def test_a_folder_search_keeps_to_the_folders_regular_notebooks(tmp_path: Path) -> None:
    folder, elsewhere = tmp_path / "jobs", tmp_path / "elsewhere"
    folder.mkdir()
    elsewhere.mkdir()
    (folder / "real.ipynb").write_text("{}")
    (folder / "alias.ipynb").symlink_to("real.ipynb")  # inside: the file it names
    (elsewhere / "far.ipynb").write_text("{}")
    (folder / "far.ipynb").symlink_to(elsewhere / "far.ipynb")
    (folder / "loop.ipynb").symlink_to("loop.ipynb")
    os.mkfifo(folder / "pipe.ipynb")
    (folder / "dir.ipynb").mkdir()
    (folder / "notes.txt").write_text("{}")

    found = folder_notebooks(str(folder))

    assert sorted(found) == [str(folder / "real.ipynb")] * 2


def test_a_folder_search_examines_a_bounded_number_of_files(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(notebook_files, "MAX_EXAMINED", 3)
    for index in range(10):
        (tmp_path / f"{index}.ipynb").write_text("{}")

    assert len(folder_notebooks(str(tmp_path))) == 3

    monkeypatch.setattr(notebook_files, "MAX_LISTED", 2)
    assert len(folder_notebooks(str(tmp_path))) == 2


def test_a_bad_file_beside_the_notebook_leaves_the_search_to_the_others(tmp_path: Path) -> None:
    (tmp_path / "a.ipynb").write_text(json.dumps(NOTEBOOK))
    (tmp_path / "loop.ipynb").symlink_to("loop.ipynb")
    os.mkfifo(tmp_path / "pipe.ipynb")
    # Holds the executed code, so the substring test picks it up; then it cannot be parsed.
    (tmp_path / "nested.ipynb").write_text('{"x": "answer = 42", "y": ' + "[" * 100_000 + "]" * 100_000 + "}")
    run = HeadlessRun(None, str(tmp_path), started_at=0.0)
    history = ["", "answer = 42"]

    assert run.cell_id(1, history) == "use"
    assert run.notebook_path(history) == str(tmp_path / "a.ipynb")


@pytest.mark.parametrize(
    ("env", "server", "expected"),
    [
        # Jupyter Server's extension, or `voila <folder>`: the page names it, percent-encoded.
        ({"SCRIPT_NAME": "/user/ann/voila/render/reports/sales%20q3.ipynb"}, None, "/k/sales q3.ipynb"),
        # A path a visitor made up names nothing outside the kernel's folder.
        ({"SCRIPT_NAME": "/voila/render/..%2F..%2Fetc%2Fx.ipynb"}, None, "/k/x.ipynb"),
        # `voila dashboard.ipynb`: the page is the base URL, the command line names it.
        ({"SCRIPT_NAME": "/"}, (["/env/bin/python", "/env/bin/voila", "--port=1", "d/a.ipynb"], "/w"),
         "/w/d/a.ipynb"),
        ({"SCRIPT_NAME": "/"}, (["/env/bin/voila", "--no-browser"], "/w"), None),  # found by its cells
        ({"VOILA_PREHEAT": "True"}, None, None),
    ],
)
def test_a_dashboards_notebook(env: dict[str, str], server: tuple[list[str], str] | None,
                               expected: str | None) -> None:
    assert dashboard_notebook(env, "/k", server) == expected


def test_voila_kernels_are_told_by_voilas_variables() -> None:
    assert voila_kernel({"SERVER_SOFTWARE": "voila/0.5.13", "VOILA_PREHEAT": "False"})
    assert voila_kernel({"VOILA_PREHEAT": "True"})
    assert not voila_kernel({"SERVER_SOFTWARE": "Apache/2.4"})
