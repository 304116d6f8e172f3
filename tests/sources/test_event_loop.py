"""The event loop's exception handler, in process: a real asyncio loop, a client on an
injected clock."""

from __future__ import annotations

import asyncio
import gc
import logging
from collections.abc import Iterator
from typing import Any

import pytest

from bugsnag_ipython.client import Client
from bugsnag_ipython.sources.event_loop import LoopExceptions
from tests.sources.conftest import Recorder


async def fail() -> None:
    raise KeyError("never retrieved")


@pytest.fixture
def loop() -> Iterator[asyncio.AbstractEventLoop]:
    made = asyncio.new_event_loop()
    try:
        yield made
    finally:
        made.close()


def hook(loop: asyncio.AbstractEventLoop, client: Client, shell: Any) -> LoopExceptions:
    """Installed from inside the running loop, as `%load_ext` in a kernel's cell does."""
    source = LoopExceptions(client, shell)

    async def install() -> None:
        source.install()

    loop.run_until_complete(install())
    return source


def forget_a_failed_task(loop: asyncio.AbstractEventLoop) -> None:
    task = loop.create_task(fail(), name="prices")
    loop.run_until_complete(asyncio.wait([task]))
    del task
    gc.collect()  # the task's exception was never retrieved: the loop hears it now


def test_a_task_exception_never_retrieved_is_unhandled_and_still_logged(
    loop: asyncio.AbstractEventLoop, client: Client, shell: Any, recorder: Recorder,
    caplog: pytest.LogCaptureFixture,
) -> None:
    hook(loop, client, shell)
    with caplog.at_level(logging.ERROR, logger="asyncio"):
        forget_a_failed_task(loop)
    [event] = recorder.events()
    assert event["unhandled"] is True and event["exceptions"][0]["errorClass"] == "KeyError"
    assert event["context"] == "asyncio task fail"
    assert event["metaData"]["asyncio"] == {
        "message": "Task exception was never retrieved", "task": "prices", "coroutine": "fail",
    }
    assert event["exceptions"][0]["stacktrace"][0]["method"] == "fail"
    assert "Task exception was never retrieved" in caplog.text  # the default handler still ran


def test_a_failing_callback_is_reported_and_the_earlier_handler_still_runs(
    loop: asyncio.AbstractEventLoop, client: Client, shell: Any, recorder: Recorder
) -> None:
    heard: list[dict[str, Any]] = []
    loop.set_exception_handler(lambda _loop, context: heard.append(context))
    hook(loop, client, shell)

    def tick() -> None:
        raise ZeroDivisionError("in a callback")

    loop.call_soon(tick)
    loop.run_until_complete(asyncio.sleep(0.01))
    [event] = recorder.events()
    assert event["context"].startswith("asyncio callback ") and event["context"].endswith(".tick")
    assert event["metaData"]["asyncio"]["message"].startswith("Exception in callback ")
    assert "/" not in event["metaData"]["asyncio"]["message"]  # no temporary file path
    assert [type(c["exception"]) for c in heard] == [ZeroDivisionError]


def test_messages_without_an_exception_and_discarded_classes_are_not_events(
    loop: asyncio.AbstractEventLoop, client: Client, shell: Any, recorder: Recorder
) -> None:
    hook(loop, client, shell)
    client.configure(discard_classes=("KeyError",))
    loop.call_exception_handler({"message": "Unclosed connection"})
    forget_a_failed_task(loop)
    assert recorder.events() == []


def test_unload_puts_the_earlier_handler_back(
    loop: asyncio.AbstractEventLoop, client: Client, shell: Any
) -> None:
    def earlier(_loop: Any, _context: Any) -> None:
        pass

    loop.set_exception_handler(earlier)
    source = hook(loop, client, shell)
    assert loop.get_exception_handler() == source.handle
    source.uninstall()
    assert loop.get_exception_handler() is earlier


def test_loaded_before_the_loop_runs_it_hooks_the_loop_of_the_first_execution(
    loop: asyncio.AbstractEventLoop, client: Client, shell: Any, recorder: Recorder
) -> None:
    ipythons_own = list(shell.events.callbacks["pre_execute"])
    source = LoopExceptions(client, shell)
    source.install()  # no loop runs yet, as when the kernel's config loads the extension
    assert loop.get_exception_handler() is None

    async def first_cell() -> None:
        shell.events.trigger("pre_execute")

    loop.run_until_complete(first_cell())
    assert loop.get_exception_handler() == source.handle
    assert shell.events.callbacks["pre_execute"] == ipythons_own  # it waited for one execution only
    forget_a_failed_task(loop)
    assert len(recorder.events()) == 1
    source.uninstall()
