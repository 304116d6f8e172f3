"""What a runner's command line says about its run, and which notebook cell each executed
source was: the pure half of headless runs (the real runs are in tests/test_kernel_headless.py)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bugsnag_ipython.report.notebook_files import best_match, read_notebook
from bugsnag_ipython.report.run import HeadlessRun, RunnerCommand
from bugsnag_ipython.sources.headless import SERVER, launched, runner_command

PY = "/env/bin/python"


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        # `jupyter nbconvert` execs jupyter-nbconvert: the kernel's parent shows the script.
        ([PY, "/env/bin/jupyter-nbconvert", "--execute", "--to", "notebook", "nb/a.ipynb"],
         RunnerCommand("nbconvert", ("/work/nb/a.ipynb",), "/work/nb/a.nbconvert.ipynb")),
        ([PY, "/env/bin/jupyter-nbconvert", "--execute", "--to", "html", "--output-dir", "out",
          "nb/a.ipynb"],
         RunnerCommand("nbconvert", ("/work/nb/a.ipynb",), "/work/out/a.html")),
        ([PY, "-m", "nbconvert", "--to", "notebook", "--execute", "--output=b.ipynb", "a.ipynb"],
         RunnerCommand("nbconvert", ("/work/a.ipynb",), "/work/b.ipynb")),
        ([PY, "/env/bin/jupyter-nbconvert", "--to", "notebook", "--execute", "--inplace", "a.ipynb"],
         RunnerCommand("nbconvert", ("/work/a.ipynb",), "/work/a.ipynb")),
        ([PY, "/env/bin/jupyter-execute", "a.ipynb", "/abs/b.ipynb"],
         RunnerCommand("jupyter execute", ("/work/a.ipynb", "/abs/b.ipynb"), None)),
        ([PY, "/env/bin/jupyter-execute", "--inplace", "a.ipynb"],
         RunnerCommand("jupyter execute", ("/work/a.ipynb",), "/work/a.ipynb")),
        ([PY, "/env/bin/papermill", "in.ipynb", "out/run.ipynb", "-p", "alpha", "0.6", "-k",
          "python3", "-r", "name", "x y", "--cwd", "/elsewhere"],
         RunnerCommand("papermill", ("/work/in.ipynb",), "/work/out/run.ipynb",
                       {"alpha": "0.6", "name": "x y"})),
        ([PY, "-m", "papermill", "s3://bucket/in.ipynb", "s3://bucket/out.ipynb"],
         RunnerCommand("papermill", ("s3://bucket/in.ipynb",), "s3://bucket/out.ipynb")),
    ],
)
def test_runner_command_lines(argv: list[str], expected: RunnerCommand) -> None:
    assert runner_command(argv, "/work") == expected


@pytest.mark.parametrize(
    "argv",
    [
        [PY, "-m", "pytest", "tests"],
        [PY, "/env/bin/jupyter-lab"],
        [PY, "/env/bin/jupyter-nbconvert", "--to", "html", "a.ipynb"],  # converts, runs nothing
        [PY, "/env/bin/jupyter-execute"],  # no notebook
        [],
    ],
)
def test_other_command_lines_are_no_runner(argv: list[str]) -> None:
    assert runner_command(argv, "/work") is None


@pytest.mark.parametrize(
    ("argv", "server"),
    [
        ([PY, "/env/bin/jupyter-lab", "--no-browser"], True),
        ([PY, "/env/bin/jupyter-notebook"], True),
        ([PY, "-m", "jupyterlab"], True),
        ([PY, "/env/bin/jupyter", "server"], True),
        ([PY, "/env/bin/voila", "a.ipynb"], True),
        ([PY, "/env/bin/jupyter-execute", "a.ipynb"], False),
        ([PY, "-m", "ipykernel_launcher", "-f", "k.json"], False),
    ],
)
def test_notebook_servers_are_told_apart(argv: list[str], server: bool) -> None:
    # A server's kernels are a person's, even without JPY_SESSION_NAME (Jupyter Server < 2.1).
    assert (launched(argv)[0] == SERVER) is server


def write(path: Path, cells: list[tuple[str, str, list[str]]], **metadata: object) -> Path:
    document = {
        "nbformat": 4, "nbformat_minor": 5, "metadata": metadata,
        "cells": [{"cell_type": "code", "id": cell_id, "source": source, "outputs": [],
                   "execution_count": None, "metadata": {"tags": tags}}
                  for cell_id, source, tags in cells]
        + [{"cell_type": "markdown", "id": "text", "source": "x = 1", "metadata": {}}],
    }
    path.write_text(json.dumps(document))
    return path


def test_executed_sources_line_up_with_the_cells_in_order(tmp_path: Path) -> None:
    notebook = write(tmp_path / "a.ipynb", [
        ("setup", "x = 1\n", []),
        ("empty", "", []),  # runners skip it: never executed
        ("twice-a", "x += 1", []),
        ("twice-b", "x += 1\n", []),
        ("last", "print(x)", []),
    ])
    run = HeadlessRun(RunnerCommand("nbconvert", (str(notebook),), None), str(tmp_path), 0.0)
    # IPython's history drops the trailing newline; `In[4]` was typed in by other means.
    history = ["", "x = 1", "x += 1", "x += 1", "other()", "print(x)", "x += 1"]

    named = [run.cell_id(count, history) for count in range(1, 7)]

    # The same source twice is two cells, in order; run again later, it is the first of them.
    assert named == ["setup", "twice-a", "twice-b", None, "last", "twice-a"]


def test_the_notebook_that_holds_the_executed_sources_is_chosen(tmp_path: Path) -> None:
    other = read_notebook(str(write(tmp_path / "other.ipynb", [("o", "x = 1", [])])))
    ours = read_notebook(str(write(tmp_path / "ours.ipynb", [("s", "x = 1", []), ("c", "y = 2", [])])))
    broken = tmp_path / "broken.ipynb"
    broken.write_text("{not json")

    assert read_notebook(str(broken)) is None
    assert best_match([n for n in (other, ours) if n], ["", "x = 1", "y = 2"]) is ours
    assert best_match([n for n in (other, ours) if n], ["", "z = 3"]) is None


def test_a_papermill_output_found_in_the_kernels_folder_tells_the_run(tmp_path: Path) -> None:
    # papermill called from Python: no command line names it, its output notebook does.
    write(tmp_path / "run.ipynb", [
        ("p", "alpha = 1", ["parameters"]),
        ("random-each-run", "# Parameters\nalpha = 2\n", ["injected-parameters"]),
        ("use", "alpha * 2", []),
    ], papermill={"input_path": "in.ipynb", "output_path": "run.ipynb",
                  "parameters": {"alpha": 2, "password": "x"},
                  "start_time": "2026-12-02T09:38:28.376499+00:00"})
    run = HeadlessRun(None, str(tmp_path), started_at=0.0)
    history = ["", "alpha = 1", "# Parameters\nalpha = 2", "alpha * 2"]

    assert run.cell_id(2, history) == "injected-parameters"  # a stable name for a new cell
    assert run.cell_id(3, history) == "use"
    assert run.notebook_path(history) == str(tmp_path / "in.ipynb")
    assert run.tab(history) == {
        "runner": "papermill",
        "inputPath": str(tmp_path / "in.ipynb"),
        "outputPath": str(tmp_path / "run.ipynb"),
        "parameters": {"alpha": 2, "password": "x"},  # redacted with the rest of the event
        "startedAt": "2026-12-02T09:38:28.376Z",
    }


def test_urls_in_the_run_tab_are_sent_without_their_credentials(tmp_path: Path) -> None:
    # papermill's own record of the run, as it writes it into the output: typed parameters,
    # nested ones from -y, an input read over HTTPS with a token.
    write(tmp_path / "run.ipynb", [("use", "connect(db)", [])], papermill={
        "input_path": "https://ci:tok3n@notebooks.example/jobs/in.ipynb", "output_path": "run.ipynb",
        "parameters": {"db": "postgresql://admin:p@ss@db:5432/x", "retries": 3,
                       "mirrors": ["s3://AKIA:sec/ret@bucket/a", {"url": "https://u@h/"}],
                       "note": "mail ops@example.com, see https://example.com/a@b"},
    })
    run = HeadlessRun(None, str(tmp_path), started_at=0.0)

    tab = run.tab(["", "connect(db)"])

    assert tab is not None
    assert tab["inputPath"] == "https://***@notebooks.example/jobs/in.ipynb"
    assert tab["parameters"] == {
        "db": "postgresql://***@db:5432/x", "retries": 3,
        # An AWS secret key holds "/", often unencoded: all of it is hidden all the same.
        "mirrors": ["s3://***@bucket/a", {"url": "https://***@h/"}],
        "note": "mail ops@example.com, see https://example.com/a@b",  # no userinfo: as it is
    }


def test_a_kernel_whose_folder_holds_no_such_notebook_is_no_run(tmp_path: Path) -> None:
    write(tmp_path / "a.ipynb", [("s", "x = 1", [])])
    run = HeadlessRun(None, str(tmp_path), started_at=0.0)
    history = ["", "typed_in_a_console()"]

    assert run.tab(history) is None
    assert run.cell_id(1, history) is None
    assert run.notebook_path(history) is None


def test_a_look_before_any_cell_ran_does_not_stop_the_cells_being_named(tmp_path: Path) -> None:
    # Something may ask for the notebook as the kernel starts (the crash record does), when no
    # executed source can be lined up with the cells yet: the first report must still name them.
    notebook = write(tmp_path / "a.ipynb", [("setup", "x = 1", []), ("use", "print(x)", [])])
    run = HeadlessRun(RunnerCommand("nbconvert", (str(notebook),), None), str(tmp_path), 0.0)

    assert run.cell_id(1, [""]) is None
    assert not run.resolved

    assert run.cell_id(2, ["", "x = 1", "print(x)"]) == "use"
    assert run.resolved


def test_a_notebook_search_that_fails_unexpectedly_names_nothing_and_raises_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    # Whatever a notebook's reader meets that it did not foresee, the event is still built.
    from bugsnag_ipython.report import notebook_files

    write(tmp_path / "job.ipynb", [("first", "alpha = 1", [])])

    def unforeseen(*args: object, **kwargs: object) -> None:
        raise RuntimeError("unforeseen")

    monkeypatch.setattr(notebook_files, "read_notebook", unforeseen)
    run = HeadlessRun(None, str(tmp_path), started_at=0.0)
    history = ["", "alpha = 1"]
    with caplog.at_level("WARNING", logger="bugsnag_ipython"):
        assert run.cell_id(1, history) is None
        assert run.notebook_path(history) is None
    assert "could not be read (unforeseen)" in caplog.text
