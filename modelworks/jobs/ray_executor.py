"""Run attempts on an existing Ray cluster: one actor per attempt, the same child process inside.

    RayExecutor("head-node:6379")     # or "auto"; "local" starts a private Ray instance here

Each attempt is an `AttemptProcess` actor (1 CPU, plus the job's GPUs, so Ray places it on a node
that has them and sets its ``CUDA_VISIBLE_DEVICES``). The actor starts the very same
``python -m modelworks.jobs.run_job JOB TOKEN`` child as `LocalExecutor` does, so crash isolation,
the claim-token fencing and checkpoint resume are one code path for both. The worker asks the
actor for its status (exit status and CPU time from the child's rusage, new output lines) without
blocking its loop; when the actor itself dies (its node was lost), the attempt ends as failed
(status -9) with a log line saying so, and the worker retries it while attempts are left. An
attempt that no node has room for waits in Ray's queue; the job's timeout still applies.

What a cluster needs: modelworks (this version) installed in the Python that Ray runs on every
node, and the same database and artifacts as the worker — on more than one node that means
PostgreSQL and shared or S3 artifacts (each attempt uploads the run it made), and resuming from
a checkpoint needs the jobs' folders (`modelworks.jobs.attempt.job_folder`, inside
``Settings.work_dir``) on storage every node shares. The worker's ``MODELWORKS_*`` and ``AWS_*``
variables (a data key among them) travel to the attempt with the actor's arguments, so run the
cluster on a network you trust.
"""

from __future__ import annotations

import logging
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from collections import deque
from dataclasses import dataclass
from typing import Any

import ray
from ray.exceptions import GetTimeoutError, RayActorError, RayError

from modelworks.errors import UserError
from modelworks.jobs.executor import TERMINATE_GRACE_S, Handle, Outcome, die_with_parent, exited, read_lines

ANSWER_WAIT_S = 1.0  # how long one poll waits for the actor's answer before the worker moves on
CANCEL_SLACK_S = 15.0  # beyond the grace period, how long a cancel waits for the actor to answer
CONNECT_TIMEOUT_S = 5.0
LOST = -signal.SIGKILL  # the status of an attempt whose actor is gone: as if the child was killed
# An actor unreachable for now (restarting, a network blip), not dead; newer Ray versions only.
UNAVAILABLE: Any = getattr(ray.exceptions, "ActorUnavailableError", ())

# (exit status, CPU seconds) once the child ended; its new output lines; its pid
Status = tuple[tuple[int, float] | None, list[str], int | None]


class AttemptProcess:
    """Inside a Ray actor: one attempt's child process, its buffered output and how it ended."""

    def __init__(self, job_id: int, token: str, env: dict[str, str]) -> None:
        self.lines: deque[str] = deque()
        self.ended: tuple[int, float] | None = None
        self.pid: int | None = None
        self._process: subprocess.Popen | None = None  # held: a dropped Popen reaps its child, taking our rusage
        self._error: OSError | None = None
        self._spawned = threading.Event()
        argv = [sys.executable, "-m", "modelworks.jobs.run_job", str(job_id), token]
        self._thread = threading.Thread(target=self._run, args=(argv, {**os.environ, **env}), daemon=True)
        self._thread.start()
        self._spawned.wait()
        if self._error is not None:
            raise self._error

    def _run(self, argv: list[str], env: dict[str, str]) -> None:
        """Start the child and read its output, from a thread that lives as long as the child: its
        PDEATHSIG fires when the thread that started it exits, so it dies with the actor, not before."""
        try:
            process = subprocess.Popen(
                argv,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                preexec_fn=die_with_parent if sys.platform == "linux" else None,
            )
        except OSError as e:
            self._error = e
            self._spawned.set()
            return
        self._process, self.pid = process, process.pid
        self._spawned.set()
        read_lines(process, self.lines)
        try:
            os.waitid(os.P_PID, process.pid, os.WEXITED | os.WNOWAIT)  # until it exits; `status` reaps it
        except ChildProcessError:
            pass  # already reaped

    def status(self) -> Status:
        """How it ended (None while it runs), the output since the last call, and the child's pid."""
        if self.ended is None and self._process is not None:
            pid, code, rusage = os.wait4(self._process.pid, os.WNOHANG)
            if pid != 0:
                self._process.returncode = os.waitstatus_to_exitcode(code)  # reaped here; keep Popen consistent
                self._thread.join(timeout=5)  # the rest of its output
                self.ended = (self._process.returncode, rusage.ru_utime + rusage.ru_stime)
        out = []
        while self.lines:
            out.append(self.lines.popleft())
        return self.ended, out, self.pid

    def cancel(self, grace_s: float) -> Status:
        """SIGTERM to the child's process group, SIGKILL after ``grace_s``; then its final status."""
        assert self.pid is not None
        for sig, wait in ((signal.SIGTERM, grace_s), (signal.SIGKILL, 5.0)):
            if self.ended is not None or exited(self.pid):
                break
            try:
                os.killpg(self.pid, sig)
            except ProcessLookupError:
                break
            deadline = time.monotonic() + wait
            while time.monotonic() < deadline and not exited(self.pid):
                time.sleep(0.05)
        return self.status()


_Actor = ray.remote(AttemptProcess)


@dataclass(kw_only=True)
class RayHandle(Handle):
    """An attempt's actor, the status request in flight, and the outcome once known."""

    actor: Any  # ray.actor.ActorHandle
    pending: Any = None  # ray.ObjectRef of an unanswered `status` call
    ended: Outcome | None = None


class RayExecutor:
    """Each attempt in an actor on the Ray cluster at ``address`` (connected on construction)."""

    def __init__(self, address: str | None) -> None:
        connect(address)

    def submit(self, job_id: int, token: str, env: dict[str, str], gpus: int) -> RayHandle:
        """Create the attempt's actor; Ray starts it once a node has 1 CPU and ``gpus`` GPUs free."""
        actor = _Actor.options(num_cpus=1, num_gpus=gpus, max_restarts=0).remote(job_id, token, env)
        return RayHandle(job_id=job_id, actor=actor)

    def poll(self, handle: RayHandle) -> Outcome | None:
        """None while it runs (or the actor has not answered yet); once it ended, its outcome."""
        if handle.ended is None:
            fresh = handle.pending is None
            if fresh:
                handle.pending = handle.actor.status.remote()
            # A fresh request gets a moment to be answered; one already waited on (an actor still
            # waiting for a place on the cluster) does not hold up the worker's loop again.
            ready, _ = ray.wait([handle.pending], timeout=ANSWER_WAIT_S if fresh else 0.0)
            if not ready:
                return None
            ref, handle.pending = handle.pending, None
            try:
                self._record(handle, ray.get(ref))
            except UNAVAILABLE:
                return None  # unreachable for now; Ray declares it dead if it stays so
            except RayActorError as e:
                self._lost(handle, f"the attempt's Ray actor died (was its node lost?): {_one_line(e)}")
            except RayError as e:
                self._lost(handle, f"the attempt's Ray actor failed: {_one_line(e)}")
            if handle.ended is None:
                return None
        ray.kill(handle.actor)  # the child is reaped: the actor's work is done
        return handle.ended

    def cancel(self, handle: RayHandle) -> None:
        """Stop the child like `LocalExecutor` does, through its actor; kill an actor that cannot answer."""
        if handle.ended is not None:
            return
        if handle.pid is None:  # the actor never answered: it may still wait for a place on the cluster
            ray.kill(handle.actor)  # a child it did start dies with it (PDEATHSIG)
            self._lost(handle, "stopped before the attempt's Ray actor had answered; killed it")
            return
        refs = [r for r in (handle.pending, handle.actor.cancel.remote(TERMINATE_GRACE_S)) if r is not None]
        handle.pending = None
        try:
            for status in ray.get(refs, timeout=TERMINATE_GRACE_S + CANCEL_SLACK_S):
                self._record(handle, status)
        except GetTimeoutError:
            ray.kill(handle.actor)
            self._lost(
                handle,
                "the attempt's Ray actor did not answer the cancel within "
                f"{TERMINATE_GRACE_S + CANCEL_SLACK_S:.0f} s; killed it",
            )
        except RayError as e:
            self._lost(handle, f"the attempt's Ray actor died: {_one_line(e)}")

    @staticmethod
    def _record(handle: RayHandle, status: Status) -> None:
        ended, lines, pid = status
        handle.lines.extend(lines)
        handle.pid = pid if pid is not None else handle.pid
        if ended is not None:
            handle.ended = Outcome(returncode=ended[0], cpu_seconds=ended[1])

    @staticmethod
    def _lost(handle: RayHandle, why: str) -> None:
        handle.lines.append(f"[ray] {why}")
        handle.ended = Outcome(returncode=LOST, cpu_seconds=0.0)


def connect(address: str | None) -> None:
    """Connect this process to the Ray cluster at ``address``, once: HOST:PORT or ray://HOST:PORT
    of a running cluster, "auto" (``RAY_ADDRESS``, or the cluster this machine belongs to), or
    "local" (start a private Ray instance inside this process's lifetime). No address, no
    cluster: this never starts one unless asked to with "local"."""
    if not address:
        raise UserError(
            "the ray executor needs a cluster address: set MODELWORKS_RAY_ADDRESS or --ray-address "
            "(HOST:PORT, 'auto', or 'local' to start a private Ray instance)"
        )
    if address not in ("auto", "local"):
        host, sep, port = address.removeprefix("ray://").rpartition(":")
        if not sep or not host or not port.isdigit():
            raise UserError(f"the Ray address must be HOST:PORT, ray://HOST:PORT, 'auto' or 'local'; got {address!r}")
        try:
            socket.create_connection((host, int(port)), timeout=CONNECT_TIMEOUT_S).close()
        except OSError as e:
            raise UserError(
                f"no Ray cluster answers at {address} ({e.strerror or e}); "
                "start one with `ray start --head` or fix the address"
            ) from None
    if ray.is_initialized():
        return  # one connection per process, shared by the workers in it
    options: dict[str, Any] = {"include_dashboard": False} if address == "local" else {}
    try:
        ray.init(address=address, logging_level=logging.WARNING, log_to_driver=False, **options)
    except (ConnectionError, ValueError, RuntimeError) as e:
        raise UserError(f"could not connect to the Ray cluster at {address!r}: {_one_line(e)}") from None


def _one_line(e: BaseException) -> str:
    """An error as one log line: Ray's messages span lines and carry terminal colours."""
    return " ".join(re.sub(r"\x1b\[[0-9;]*m", "", str(e)).split())[:500]
