"""An exception and what the kernel knows now -> one event body (before callbacks, session,
redaction and encoding, which the client does in that order)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from . import events, payloads
from .cells import notebook_ref
from .stacktrace import FrameContext, exception_entries

if TYPE_CHECKING:
    from ..core.config import Configuration
    from .breadcrumbs import Breadcrumbs
    from .events import CellRun, ThreadInfo
    from .stacktrace import CellMap


@dataclass(frozen=True)
class EventFacts:
    """What every event of this kernel carries, as the client knows it at the moment."""

    app: dict[str, Any]
    device: dict[str, Any]
    user: dict[str, str]
    tabs: dict[str, Any]  # the user's metadata tabs (and a run's)
    kernel: dict[str, Any]
    context: str | None  # set_context()'s, replacing the automatic one


@dataclass
class BuiltEvent:
    body: dict[str, Any]
    severity: str


def build_event(
    error: BaseException,
    *,
    unhandled: bool,
    severity: str | None,
    context: str | None,
    extra: dict[str, Any] | None,
    cell: CellRun | None,
    thread: ThreadInfo | None,
    facts: EventFacts,
    config: Configuration,
    cells: CellMap,
    breadcrumbs: Breadcrumbs,
) -> BuiltEvent:
    """The event body: everything in it is a copy the on-error callbacks may change."""
    chosen, reason = events.severity_of(unhandled, severity)
    notebook = notebook_ref(cells.notebook_path(), config.project_root)
    if cell is not None and not cell.cell_id and cell.execution_count is not None:
        # No frontend sent one: a runner's notebook may know the cell (report/run.py).
        cell = cell._replace(cell_id=cells.cell_id(cell.execution_count))
    frames = FrameContext(
        resolve_cell=cells,
        project_root=config.project_root,
        send_code=config.send_code,
        notebook=notebook,
    )
    body = payloads.event(
        exceptions=exception_entries(error, frames),
        unhandled=unhandled,
        severity=chosen,
        severity_reason=reason,
        app=facts.app,
        device=facts.device,
        user=facts.user,
        context=events.context_of(context, facts.context, cell, thread),
        breadcrumbs=breadcrumbs.snapshot(config.redacted_keys),
        metadata=events.event_metadata(
            facts.tabs,
            kernel=facts.kernel,
            notebook=events.notebook_tab(notebook, cell, send_code=config.send_code),
            thread=thread,
            extra=extra,
        ),
    )
    return BuiltEvent(body, chosen)
