"""A real IPython kernel for tests: the venv's own Python, a private IPYTHONDIR, our env.

The kernel is started from a kernelspec made here, so that a `python3` kernelspec the user has
installed is never picked up, and with an IPython profile that switches the installed auto-load
off unless a test asks for it.
"""

from __future__ import annotations

import json
import os
import queue
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from jupyter_client.kernelspec import KernelSpecManager
from jupyter_client.manager import KernelManager

from bugsnag_ipython.demo import KERNEL_NAME, kernel_environment, make_ipython_dir, make_kernelspec
from tests.payloads import API_KEY

STARTUP_TIMEOUT = 60.0


def collector_env(collector: Any, persistence: Path, **extra: str) -> dict[str, str]:
    """The variables that make a kernel report to `collector` with its payloads stored under
    `persistence`; `extra` adds or overrides ("" removes a variable)."""
    env = {
        "BUGSNAG_API_KEY": API_KEY,
        "BUGSNAG_NOTIFY_ENDPOINT": collector.notify_url,
        "BUGSNAG_SESSIONS_ENDPOINT": collector.sessions_url,
        "BUGSNAG_PERSISTENCE_DIRECTORY": str(persistence),
    }
    env.update(extra)
    return {k: v for k, v in env.items() if v != ""}


def installed_env(
    work: Path, collector: Any, persistence: Path | None = None, **extra: str
) -> dict[str, str]:
    """The environment of a kernel that a runner (nbconvert, papermill, Voila...) starts from the
    kernelspec in `work`: the installed kernel config loads the extension (an IPYTHONDIR without a
    profile), and the kernel reports to `collector`, storing under `persistence` (`work/outbox`)."""
    (work / "ipython").mkdir(exist_ok=True)
    make_kernelspec(work)
    extra = collector_env(collector, persistence or work / "outbox", **extra)
    return kernel_environment(work / "ipython", {**extra, "JUPYTER_PATH": str(work)})


@dataclass
class CellResult:
    status: str
    stdout: str = ""
    stderr: str = ""
    error_name: str | None = None
    traceback: list[str] = field(default_factory=list)
    data: list[dict[str, Any]] = field(default_factory=list)  # display_data / execute_result
    prompts: list[dict[str, Any]] = field(default_factory=list)  # input_request contents

    @property
    def text(self) -> str:
        return self.stdout + self.stderr


class Kernel:
    """One running kernel and a blocking client to it."""

    def __init__(
        self,
        root: Path,
        env: dict[str, str],
        *,
        kernel_config: str = "",
        cwd: Path | None = None,
        python: Path | None = None,
    ) -> None:
        """A kernel of `python` (this one's by default) with `env` over kernel_environment's,
        its IPython profile switching the installed auto-load off, `kernel_config` added."""
        root.mkdir(parents=True, exist_ok=True)
        self.root = root
        specs = KernelSpecManager(kernel_dirs=[str(make_kernelspec(root))])
        if python is not None:
            spec_file = root / "kernels" / KERNEL_NAME / "kernel.json"
            spec = json.loads(spec_file.read_text())
            spec_file.write_text(json.dumps(spec | {"argv": [str(python), *spec["argv"][1:]]}))
        # Over Unix sockets in the kernel's own folder, not TCP: a TCP port picked free here can
        # be taken by another process before the kernel binds it ("Address already in use"),
        # which on a busy machine kills the kernel at its start. The path is absolute: the
        # kernel runs in another directory than this client.
        self.manager = KernelManager(kernel_name=KERNEL_NAME, kernel_spec_manager=specs,
                                     transport="ipc", ip=str(root.resolve() / "ipc"))
        ipython_dir = make_ipython_dir(root, kernel_config)
        # The kernel's own log (ours included) goes to a file, not into the test run's output;
        # open while the kernel lives, for a restart starts the new one with the same stderr.
        self.log_path = root / "kernel.log"
        self._log: int | None = os.open(self.log_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND)
        self.manager.start_kernel(
            env=kernel_environment(ipython_dir, env), cwd=str(cwd or root), stderr=self._log
        )
        self.client = self.manager.blocking_client()
        self.client.start_channels()
        self.client.wait_for_ready(timeout=STARTUP_TIMEOUT)

    def send(
        self,
        code: str,
        *,
        cell_id: str | None = None,
        silent: bool = False,
        allow_stdin: bool = False,
        user_expressions: dict[str, str] | None = None,
    ) -> str:
        """Send an execute_request as a notebook frontend does, without waiting for it (`silent`:
        as frontends run completions, with no cell and no history); its msg_id."""
        content = {
            "code": code,
            "silent": silent,
            "store_history": not silent,
            "user_expressions": user_expressions or {},
            "allow_stdin": allow_stdin,
            "stop_on_error": False,
        }
        message = self.client.session.msg("execute_request", content)
        if cell_id is not None:
            message["metadata"]["cellId"] = cell_id
        self.client.shell_channel.send(message)
        return str(message["header"]["msg_id"])

    def execute(
        self,
        code: str,
        *,
        timeout: float = 60.0,
        cell_id: str | None = None,
        answers: list[str] | None = None,
    ) -> CellResult:
        """Run one cell as a notebook frontend would, collecting what it showed. With `answers`,
        the frontend takes input (`allow_stdin`), and answers the cell's prompts with them, in
        order."""
        pending_answers = list(answers or [])
        msg_id = self.send(code, cell_id=cell_id, allow_stdin=answers is not None)
        result = CellResult(status="unknown")
        deadline = time.monotonic() + timeout
        idle = False
        while not idle:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError(f"cell did not finish within {timeout}s: {code[:60]!r}")
            if answers is not None:
                self._answer_prompt(msg_id, pending_answers, result)
            try:
                # While a prompt may come, iopub is read in short waits so the stdin channel is too.
                msg = self.client.get_iopub_msg(timeout=remaining if answers is None else 0.05)
            except queue.Empty:
                continue
            if msg["parent_header"].get("msg_id") != msg_id:
                continue
            kind, body = msg["msg_type"], msg["content"]
            if kind == "stream":
                if body["name"] == "stdout":
                    result.stdout += body["text"]
                else:
                    result.stderr += body["text"]
            elif kind in ("display_data", "execute_result"):
                result.data.append(body["data"])
            elif kind == "error":
                result.error_name = body["ename"]
                result.traceback = body["traceback"]
            elif kind == "status" and body["execution_state"] == "idle":
                idle = True
        while True:  # the reply to this request, not a stray one to an earlier request
            reply = self.client.get_shell_msg(timeout=max(1.0, deadline - time.monotonic()))
            if reply["parent_header"].get("msg_id") == msg_id:
                break
        result.status = reply["content"]["status"]
        if result.status != "ok" and not result.traceback:
            result.traceback = [f"{reply['content'].get('ename')}: {reply['content'].get('evalue')}"]
        return result

    def _answer_prompt(self, msg_id: str, answers: list[str], result: CellResult) -> None:
        try:
            request = self.client.get_stdin_msg(timeout=0)
        except queue.Empty:
            return
        if request["parent_header"].get("msg_id") != msg_id or request["msg_type"] != "input_request":
            return
        result.prompts.append(request["content"])
        self.client.input(answers.pop(0) if answers else "")

    def evaluate(self, expression: str) -> Any:
        """The value of a Python expression in the kernel, passed back as JSON."""
        shown = self.execute(f"import json as _j; print(_j.dumps({expression}))")
        if shown.status != "ok":
            raise AssertionError(f"{expression!r} failed in the kernel: {shown}")
        return json.loads(shown.stdout.strip().splitlines()[-1])

    def flush(self, seconds: float = 10) -> Any:
        """`bugsnag_ipython.flush(seconds)` in the kernel: True once it has nothing left to send."""
        return self.evaluate(f"__import__('bugsnag_ipython').flush({seconds})")

    def shutdown(self) -> float:
        """Ask the kernel to shut down as a frontend would; the seconds it took to exit."""
        started = time.monotonic()
        self.client.stop_channels()
        self.manager.shutdown_kernel(now=False)
        self._close_log()
        return time.monotonic() - started

    def kill(self) -> None:
        self.client.stop_channels()
        self.manager.shutdown_kernel(now=True)
        self._close_log()

    def _close_log(self) -> None:
        if self._log is not None:
            os.close(self._log)
            self._log = None

    def log(self) -> str:
        """What the kernel wrote to its log so far."""
        return self.log_path.read_text(errors="replace")

    @property
    def alive(self) -> bool:
        return bool(self.manager.is_alive())
