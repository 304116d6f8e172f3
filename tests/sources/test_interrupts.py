"""Interrupts around a cell's error, in this process: the error an interrupt replaced is found
on the shell, and one interrupt is held off while the error is reported."""

from __future__ import annotations

import signal
from types import SimpleNamespace

import pytest

from bugsnag_ipython.sources.cell_runs import HeldInterrupt, replaced_error


def result(count: int | None, error: BaseException | None) -> SimpleNamespace:
    return SimpleNamespace(execution_count=count, error_in_exec=error)


def test_the_cells_own_result_gives_the_error_an_interrupt_replaced() -> None:
    error = RecursionError("maximum recursion depth exceeded")
    own, replacing = result(7, error), result(None, KeyboardInterrupt())
    noted = SimpleNamespace(last_execution_result=own, displayhook=SimpleNamespace(exec_result=None))
    assert replaced_error(noted, replacing, 7) is error
    assert replaced_error(noted, None, 7) is error  # IPython's recovery lost even the new result
    # Before IPython noted it, the displayhook still holds the cell's result.
    running = SimpleNamespace(last_execution_result=result(6, ValueError()),
                              displayhook=SimpleNamespace(exec_result=own))
    assert replaced_error(running, replacing, 7) is error


def test_nothing_is_found_for_another_cell_or_for_the_users_own_interrupt() -> None:
    earlier = SimpleNamespace(last_execution_result=result(6, ValueError("reported with In [6]")))
    assert replaced_error(earlier, result(None, KeyboardInterrupt()), 7) is None
    stopped = result(7, KeyboardInterrupt())  # the user stopped the cell: its result is the one given
    assert replaced_error(SimpleNamespace(last_execution_result=stopped), stopped, 7) is None
    assert replaced_error(earlier, None, None) is None


def test_one_interrupt_is_held_off_and_a_second_goes_through() -> None:
    if signal.getsignal(signal.SIGINT) is not signal.default_int_handler:
        pytest.skip("this test process does not raise KeyboardInterrupt at SIGINT")
    with HeldInterrupt() as held:
        signal.raise_signal(signal.SIGINT)
        assert held.interrupted
        with pytest.raises(KeyboardInterrupt):
            signal.raise_signal(signal.SIGINT)
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
    with HeldInterrupt() as held:
        pass
    assert not held.interrupted and signal.getsignal(signal.SIGINT) is signal.default_int_handler
