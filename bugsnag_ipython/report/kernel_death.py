"""The `KernelDied` event from a dead kernel's crash record and fault dump, as bugsnag-android's exitinfo."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, NamedTuple

from ..core.basics import JsonDict
from . import events, payloads, trimming
from .cells import CellRef, NotebookRef, cell_file, is_cell_file, source_identity
from .events import DeadCell
from .stacktrace import EventFrames, FrameContext, without_machinery

if TYPE_CHECKING:
    from ..core.config import Configuration

ERROR_CLASS = "KernelDied"

# faulthandler's first line for each fatal signal it handles.
SIGNALS = {"Segmentation fault": "SIGSEGV", "Bus error": "SIGBUS", "Floating point exception": "SIGFPE",
           "Aborted": "SIGABRT", "Illegal instruction": "SIGILL"}
_FATAL = re.compile(r"Fatal Python error: (?P<what>[^\n]+)")
_THREAD = re.compile(r"^(?P<current>Current thread|Thread) (?P<id>0x[0-9a-fA-F]+)")
_FRAME = re.compile(r'^\s+File "(?P<file>.*)", line (?P<line>\d+|\?\?\?) in (?P<method>.*)$')


class DumpThread(NamedTuple):
    ident: str
    current: bool
    frames: list[tuple[str, int, str]]  # (file, line, method), innermost first


class FaultDump(NamedTuple):
    """What faulthandler wrote at a fatal signal."""

    description: str  # e.g. "Segmentation fault"
    signal: str | None  # e.g. "SIGSEGV"
    threads: list[DumpThread]


def parse_fault_dump(text: str) -> FaultDump | None:
    """The first fault in `text`, or None when there is none."""
    fatal = _FATAL.search(text)
    if fatal is None:
        return None
    description = fatal["what"].strip()
    threads: list[DumpThread] = []
    for line in text[fatal.end() :].splitlines():
        thread = _THREAD.match(line)
        if thread is not None:
            threads.append(DumpThread(thread["id"], thread["current"] == "Current thread", []))
            continue
        frame = _FRAME.match(line)
        if frame is not None and threads:
            number = int(frame["line"]) if frame["line"].isdigit() else 0
            threads[-1].frames.append((frame["file"], number, frame["method"]))
        elif line.startswith(("Extension modules", "Fatal Python error")):
            break
    return FaultDump(description, SIGNALS.get(description), threads)


class OomEvidence(NamedTuple):
    """The cgroup's OOM-kill count when the kernel started and after it died."""

    before: int
    after: int
    cgroup_version: int


class KernelDeath(NamedTuple):
    """Everything known about one dead kernel."""

    pid: int
    died_at: float  # seconds since the epoch, the best estimate
    launched_at: float
    cell: DeadCell | None
    fault: FaultDump | None
    oom: OomEvidence | None
    memory: JsonDict  # residentBytes, peakResidentBytes, cgroupUsageBytes, cgroupLimitBytes, at
    facts: Mapping[str, Any]  # the dead kernel's checkpoint document
    session: JsonDict | None = None  # its session, counts including this event
    notebook: NotebookRef | None = None
    send_code: bool = True
    cells: Mapping[str, Any] = {}  # code file -> [identity, count, source]

    @property
    def out_of_memory(self) -> bool:
        """No fault, and the cgroup's OOM-kill count went up while the kernel ran."""
        return self.fault is None and self.oom is not None and self.oom.after > self.oom.before


def cause(death: KernelDeath) -> str:
    """What ended the kernel, in a few words."""
    if death.fault is not None:
        signal = f" ({death.fault.signal})" if death.fault.signal else ""
        return f"{death.fault.description.lower()}{signal}"
    return "out of memory" if death.out_of_memory else "killed"


def message(death: KernelDeath) -> str:
    """E.g. "killed while running In [7] (out of memory: the cgroup's oom_kill count went up)"."""
    where = "while idle"
    if death.cell is not None:
        count = death.cell.execution_count
        where = f"while running In [{count}]" if count else "while running a cell"
    if death.out_of_memory:
        return f"killed {where} (out of memory: the cgroup's oom_kill count went up)"
    return f"{cause(death)} {where}"


def _dead_cell(named: Mapping[str, Any], filename: str) -> CellRef | None:
    # A dead kernel's cell file, as its checkpoint named it: [identity, count, source].
    entry = named.get(filename)
    if isinstance(entry, list) and len(entry) == 3:
        identity, count, source = entry
        lines = tuple(source.splitlines(keepends=True)) if isinstance(source, str) else ()
        return CellRef(str(identity), lines, count if isinstance(count, int) else None)
    if not is_cell_file(filename):
        return None
    # A cell run in the death's last second, unnamed by the checkpoint: named by the kernel's hash.
    stem = re.sub(r"\W", "", filename.rsplit("/", 1)[-1].removesuffix(".py"))
    return CellRef(f"code-{stem}", (), None)


def _thread_frames(thread: DumpThread, frames: EventFrames, named: Mapping[str, Any]) -> list[JsonDict]:
    shown = thread.frames
    cells = [index for index, (file, _, _) in enumerate(shown) if file in named or is_cell_file(file)]
    if cells:
        outermost_first = shown[: cells[-1] + 1][::-1]
        shown = without_machinery(outermost_first, frames.context.roots)[::-1]
    return [frames.frame(file, line, method) for file, line, method in shown]


def kernel_death_event(death: KernelDeath, *, project_root: str | None, device: JsonDict,
                       user: JsonDict) -> JsonDict:
    """The event body, session attached; the client adds what every event of its carries."""
    facts, fault, cell, named = death.facts, death.fault, death.cell, dict(death.cells)
    current = next((t for t in fault.threads if t.current), None) if fault else None
    identity = (cell.cell_id or source_identity(cell.source)) if cell else ""
    if cell is not None and current is not None:
        # The running cell is the outermost cell frame of the crashing thread.
        cell_files = [file for file, _, _ in current.frames if file in named or is_cell_file(file)]
        if cell_files:
            named[cell_files[-1]] = [identity, cell.execution_count, cell.source]
    frames = EventFrames(FrameContext(resolve_cell=lambda filename: _dead_cell(named, filename),
                                      project_root=project_root, send_code=death.send_code,
                                      notebook=death.notebook))
    stacktrace = _thread_frames(current, frames, named) if current is not None else []
    signal = fault.signal if fault is not None else None
    body = payloads.event(
        exceptions=[{"errorClass": ERROR_CLASS, "message": message(death), "type": "python",
                     "stacktrace": stacktrace}],
        unhandled=True, severity="error", severity_reason="signal" if signal else "unhandledException",
        app=_app(death), device={**device, "time": payloads.iso8601(death.died_at)}, user=user,
        context=facts.get("context") or events.context_of(None, None, cell, None),
        breadcrumbs=[c for c in facts.get("breadcrumbs") or [] if isinstance(c, dict)],
        metadata=_metadata(death),
    )
    if signal:
        body["severityReason"]["attributes"] = {"signalType": signal}
    if fault is not None:
        body["threads"] = [
            {"id": t.ident, "name": "crashed thread" if t.current else f"thread {t.ident}",
             "errorReportingThread": t.current, "type": "python",
             "stacktrace": _thread_frames(t, frames, named)}
            for t in fault.threads
        ]
    if not stacktrace:
        # No frame to group by: the same death in the same cell is one error.
        where = cell_file(death.notebook, CellRef(identity, ())) if cell else "idle"
        body["groupingHash"] = f"{ERROR_CLASS} {cause(death)} {where}"
    if death.session is not None:
        body["session"] = death.session
    return body


def _app(death: KernelDeath) -> JsonDict:
    found = death.facts.get("app")
    app: JsonDict = found if isinstance(found, dict) else {}
    fields: JsonDict = {"type": "jupyter", "releaseStage": app.get("releaseStage") or "production",
                        "duration": max(0, round((death.died_at - death.launched_at) * 1000)),
                        "durationInForeground": (death.cell.ran_ms or 0) if death.cell else 0,
                        "inForeground": death.cell is not None}
    if app.get("version"):
        fields["version"] = app["version"]
    return fields


def _metadata(death: KernelDeath) -> dict[str, JsonDict]:
    found = death.facts.get("metadata")
    tabs = {str(k): v for k, v in found.items() if isinstance(v, dict)} if isinstance(found, dict) else {}
    notebook = events.notebook_tab(death.notebook, death.cell, send_code=death.send_code)
    if notebook:
        tabs["notebook"] = {**notebook, **tabs.get("notebook", {})}
    kernel = death.facts.get("kernel")
    if isinstance(kernel, dict):
        tabs["kernel"] = {**kernel, "pid": death.pid}
    tabs["exitInfo"] = _exit_info(death)
    return tabs


def death_payload(death: KernelDeath, config: Configuration, *, device: JsonDict, hub_user: str | None,
                  on_error: events.OnErrorCallbacks | None = None) -> tuple[JsonDict, bytes] | None:
    """The payload of a death and its encoded body; None for a stage not enabled, or one on_error drops."""
    found = death.facts.get("user")  # what set_user() had set in the dead kernel
    set_user = {str(k): str(v) for k, v in found.items()} if isinstance(found, dict) else {}
    user = events.user_of(set_user, hub_user, device.get("id"))
    body = kernel_death_event(death, project_root=config.project_root, device=device, user=user)
    stages = config.enabled_release_stages
    if stages is not None and body["app"]["releaseStage"] not in stages:
        return None
    if on_error and not on_error.run(body):
        return None
    return trimming.sealed_event(body, config)


def _exit_info(death: KernelDeath) -> JsonDict:  # why, and the evidence
    info: JsonDict = {"description": message(death)}
    fault = death.fault
    if fault is not None:
        info.update(cause="fatal signal", signal=fault.signal or fault.description)
    elif death.out_of_memory:
        info["cause"] = "out of memory"
    else:
        info["cause"] = "killed (no fault recorded: SIGKILL, or an exit that ran no exit code)"
    info["importance"] = "foreground" if death.cell is not None else "background"
    if death.cell is not None and death.cell.ran_ms is not None:
        info["cellRanMs"] = death.cell.ran_ms
    if death.oom is not None:
        info["oomKillCount"] = {"atStart": death.oom.before, "afterDeath": death.oom.after,
                                "cgroupVersion": death.oom.cgroup_version}
    if death.memory:
        info["memoryLastSeen"] = dict(death.memory)
    info["pid"] = death.pid
    return info
