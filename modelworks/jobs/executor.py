"""Executors run one attempt of a job somewhere and report how it ended.

The worker talks to an executor only through `Executor`'s three calls, so another backend (a Ray
cluster: submit a remote task, poll its future, cancel it) fits without touching the worker.
`LocalExecutor` runs ``python -m modelworks.jobs.run_job JOB TOKEN`` as a child process: a crash,
a leak or a kill -9 of the child never takes the worker down with it.
"""

from __future__ import annotations

import ctypes
import os
import signal
import subprocess
import sys
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Protocol

from modelworks.errors import UserError

TERMINATE_GRACE_S = 5.0


@dataclass(frozen=True)
class Outcome:
    """How an attempt ended: its exit status (negative: killed by that signal) and its CPU time."""

    returncode: int
    cpu_seconds: float


@dataclass
class Handle:
    """A running attempt, as its executor tracks it."""

    job_id: int
    pid: int
    process: subprocess.Popen
    started: float = field(default_factory=time.monotonic)
    lines: deque[str] = field(default_factory=deque)
    reader: threading.Thread | None = None

    def drain(self) -> list[str]:
        """The output lines produced since the last call."""
        out = []
        while self.lines:
            out.append(self.lines.popleft())
        return out


class Executor(Protocol):
    def submit(self, job_id: int, token: str, env: dict[str, str]) -> Handle: ...

    def poll(self, handle: Handle) -> Outcome | None: ...

    def cancel(self, handle: Handle) -> None: ...


def _die_with_parent() -> None:
    """In the child, before exec: get SIGKILL when the worker dies, so no orphan keeps training."""
    try:
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except OSError:
        pass  # not Linux: the claim token still fences the orphan's writes


class LocalExecutor:
    """Each attempt in its own process on this machine, its output read line by line."""

    def submit(self, job_id: int, token: str, env: dict[str, str]) -> Handle:
        process = subprocess.Popen(
            [sys.executable, "-m", "modelworks.jobs.run_job", str(job_id), token],
            env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
            start_new_session=True, preexec_fn=_die_with_parent if sys.platform == "linux" else None,
        )
        handle = Handle(job_id=job_id, pid=process.pid, process=process)
        handle.reader = threading.Thread(target=_read_lines, args=(process, handle.lines), daemon=True)
        handle.reader.start()
        return handle

    def poll(self, handle: Handle) -> Outcome | None:
        """None while it runs; once it ended, its exit status and CPU time (user + system)."""
        try:
            pid, status, rusage = os.wait4(handle.pid, os.WNOHANG)
        except ChildProcessError:
            return Outcome(returncode=handle.process.returncode or -1, cpu_seconds=0.0)
        if pid == 0:
            return None
        code = os.waitstatus_to_exitcode(status)
        handle.process.returncode = code  # reaped here; keep Popen consistent
        if handle.reader is not None:
            handle.reader.join(timeout=5)  # the rest of its output
        return Outcome(returncode=code, cpu_seconds=rusage.ru_utime + rusage.ru_stime)

    def cancel(self, handle: Handle) -> None:
        """SIGTERM to the attempt's process group, SIGKILL if it is still there after a grace period."""
        for sig, wait in ((signal.SIGTERM, TERMINATE_GRACE_S), (signal.SIGKILL, 0.0)):
            try:
                os.killpg(handle.pid, sig)
            except ProcessLookupError:
                return
            deadline = time.monotonic() + wait
            while time.monotonic() < deadline:
                if _exited(handle.pid):
                    return
                time.sleep(0.05)


def _exited(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(")")[-1].split()[0] == "Z"  # a zombie: ended, waiting to be reaped
    except FileNotFoundError:
        return True


def _read_lines(process: subprocess.Popen, sink: deque[str]) -> None:
    assert process.stdout is not None
    for raw in process.stdout:
        sink.append(raw.decode("utf-8", "replace").rstrip("\n"))


def make_executor(kind: str) -> Executor:
    """The executor named by the job's (or worker's) config."""
    if kind == "local":
        return LocalExecutor()
    if kind == "ray":
        raise UserError("the ray executor is not available yet; use executor 'local'")
    raise UserError(f"unknown executor {kind!r}; use 'local'")
