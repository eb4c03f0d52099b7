"""Executors run one attempt of a job somewhere and report how it ended.

The worker talks to an executor only through `Executor`'s three calls and the `Handle` they share,
so each backend fits without touching the worker. Both run ``python -m modelworks.jobs.run_job JOB
TOKEN`` as a child process, so a crash, a leak or a kill -9 of the child never takes the worker
down with it: `LocalExecutor` on this machine, `modelworks.jobs.ray_executor.RayExecutor` inside
an actor on a Ray cluster. `modelworks.jobs.executors` names them (the ``executor`` setting).
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

TERMINATE_GRACE_S = 5.0


@dataclass(frozen=True)
class Outcome:
    """How an attempt ended: its exit status (negative: killed by that signal) and its CPU time."""

    returncode: int
    cpu_seconds: float


@dataclass
class Handle:
    """A running attempt, as the worker sees it; each executor keeps its own state in a subclass.

    ``pid`` is the child's process id where known (on a Ray cluster: on the node that runs it);
    ``lines`` is the output the executor has collected and `drain` not yet handed out."""

    job_id: int
    pid: int | None = None
    started: float = field(default_factory=time.monotonic)
    lines: deque[str] = field(default_factory=deque)

    def drain(self) -> list[str]:
        """The output lines produced since the last call."""
        out = []
        while self.lines:
            out.append(self.lines.popleft())
        return out


@dataclass(kw_only=True)
class LocalHandle(Handle):
    """A child process of this worker, and the thread that reads its output."""

    process: subprocess.Popen
    reader: threading.Thread | None = None


class Executor(Protocol):
    """Runs attempts. ``env`` holds the variables the attempt needs on top of the environment of
    the machine that runs it; ``gpus`` is how many GPUs the job asked for."""

    def submit(self, job_id: int, token: str, env: dict[str, str], gpus: int) -> Handle: ...

    def poll(self, handle: Handle) -> Outcome | None: ...

    def cancel(self, handle: Handle) -> None: ...


def die_with_parent() -> None:
    """In the child, before exec: get SIGKILL when the worker dies, so no orphan keeps training."""
    try:
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except OSError:
        pass  # not Linux: the claim token still fences the orphan's writes


class LocalExecutor:
    """Each attempt in its own process on this machine, its output read line by line."""

    def submit(self, job_id: int, token: str, env: dict[str, str], gpus: int) -> LocalHandle:
        """Start the attempt; the worker already counted its ``gpus`` against its own slots."""
        process = subprocess.Popen(
            [sys.executable, "-m", "modelworks.jobs.run_job", str(job_id), token],
            env={**os.environ, **env},
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            preexec_fn=die_with_parent if sys.platform == "linux" else None,
        )
        handle = LocalHandle(job_id=job_id, pid=process.pid, process=process)
        handle.reader = threading.Thread(target=read_lines, args=(process, handle.lines), daemon=True)
        handle.reader.start()
        return handle

    def poll(self, handle: LocalHandle) -> Outcome | None:
        """None while it runs; once it ended, its exit status and CPU time (user + system)."""
        try:
            pid, status, rusage = os.wait4(handle.process.pid, os.WNOHANG)
        except ChildProcessError:
            return Outcome(returncode=handle.process.returncode or -1, cpu_seconds=0.0)
        if pid == 0:
            return None
        code = os.waitstatus_to_exitcode(status)
        handle.process.returncode = code  # reaped here; keep Popen consistent
        if handle.reader is not None:
            handle.reader.join(timeout=5)  # the rest of its output
        return Outcome(returncode=code, cpu_seconds=rusage.ru_utime + rusage.ru_stime)

    def cancel(self, handle: LocalHandle) -> None:
        """SIGTERM to the attempt's process group, SIGKILL if it is still there after a grace period."""
        for sig, wait in ((signal.SIGTERM, TERMINATE_GRACE_S), (signal.SIGKILL, 0.0)):
            try:
                os.killpg(handle.process.pid, sig)
            except ProcessLookupError:
                return
            deadline = time.monotonic() + wait
            while time.monotonic() < deadline:
                if exited(handle.process.pid):
                    return
                time.sleep(0.05)


def exited(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(")")[-1].split()[0] == "Z"  # a zombie: ended, waiting to be reaped
    except FileNotFoundError:
        return True


def read_lines(process: subprocess.Popen, sink: deque[str]) -> None:
    assert process.stdout is not None
    for raw in process.stdout:
        sink.append(raw.decode("utf-8", "replace").rstrip("\n"))
