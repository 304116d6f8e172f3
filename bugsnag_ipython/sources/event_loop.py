"""The kernel's asyncio event loop: what it hands to its exception handler (a task whose
exception is never retrieved, a failing callback) is an unhandled event; its earlier handler
still runs after ours."""

from __future__ import annotations

import contextlib
import sys
from typing import TYPE_CHECKING, Any

from ..core.basics import JsonDict
from . import Source

if TYPE_CHECKING:
    from asyncio import AbstractEventLoop

    from ..client import Client


def _name_of(thing: Any) -> str:
    return str(getattr(thing, "__qualname__", None) or getattr(thing, "__name__", None) or thing)[:200]


def describe(context: JsonDict) -> tuple[str, JsonDict]:
    """The event's context and `asyncio` tab; a callback by its name, never its repr (which
    names the kernel's temporary cell file)."""
    import asyncio  # a loop called us: it is imported
    facts: JsonDict = {"message": str(context.get("message", ""))[:500]}
    future = context.get("future") or context.get("task")
    if isinstance(future, asyncio.Task):
        coroutine = _name_of(future.get_coro())
        facts.update(task=future.get_name(), coroutine=coroutine)
        return f"asyncio task {coroutine}", facts
    callback = getattr(context.get("handle"), "_callback", None)
    if callback is not None:
        name = _name_of(callback)
        facts.update(message=f"Exception in callback {name}", callback=name)
        return f"asyncio callback {name}", facts
    return "asyncio", facts


class LoopExceptions(Source):
    """The kernel's event loop's exception handler, chained to the one it had."""

    def __init__(self, client: Client, shell: Any) -> None:
        super().__init__(client)
        self.shell = shell
        self.loop: AbstractEventLoop | None = None
        self._previous: Any = None  # the loop's handler before ours

    def install(self) -> None:
        if not self._hook():
            # Loaded before the kernel's loop exists (by the kernel's config): hook it from the
            # first execution, which runs on it. Without a loop then (terminal IPython), never.
            self.shell.events.register("pre_execute", self._first_execute)

    def uninstall(self) -> None:
        with contextlib.suppress(ValueError):  # hooked already, or at load
            self.shell.events.unregister("pre_execute", self._first_execute)
        loop, self.loop = self.loop, None
        if loop is not None and loop.get_exception_handler() == self.handle:
            loop.set_exception_handler(self._previous)

    def _first_execute(self) -> None:
        try:
            self.shell.events.unregister("pre_execute", self._first_execute)
            self._hook()
        except Exception:
            self.internal_failure("asyncio")

    def _hook(self) -> bool:
        asyncio = sys.modules.get("asyncio")  # not imported yet: no loop can be running
        try:
            self.loop = asyncio.get_running_loop() if asyncio is not None else None
        except RuntimeError:
            return False
        if self.loop is not None:
            self._previous = self.loop.get_exception_handler()
            self.loop.set_exception_handler(self.handle)
        return self.loop is not None

    def handle(self, loop: AbstractEventLoop, context: JsonDict) -> None:
        try:
            error = context.get("exception")
            if isinstance(error, BaseException) and self.client.should_report(error):
                where, facts = describe(context)
                self.client.notify_unhandled(error, where, "asyncio", facts)
        except Exception:
            self.internal_failure("asyncio")
        # What the user saw before still happens: the earlier handler, or the default logging.
        if self._previous is not None:
            self._previous(loop, context)
        else:
            loop.default_exception_handler(context)
