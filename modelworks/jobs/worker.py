"""The worker: claims jobs from the database queue and supervises one child process per job.

    Worker(settings, cpu_slots=2).run(stop_event)      # `modelworks worker`; `modelworks up` starts one

Each loop: requeue jobs whose worker stopped heartbeating, claim jobs while slots are free (one
CPU slot per job, plus the GPUs it asks for; at most ``project_limit`` running per project), and
for every child: stream its output into the job's log, renew its lease, stop it on cancel or
timeout, and record its end. A child that fails is retried while attempts are left; a retried
train job resumes from its last checkpoint. Where children run is the executor's business (the
``executor`` setting): on this machine, or in actors on a Ray cluster.
"""

from __future__ import annotations

import os
import socket
import sys
import threading
import time
import uuid
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from modelworks.jobs import queue
from modelworks.jobs.attempt import clear_working_data, job_folder
from modelworks.jobs.executor import Executor, Handle
from modelworks.jobs.executors import make_executor
from modelworks.jobs.policies import close_feedback_windows, run_policies
from modelworks.platform.db import make_engine, session_factory
from modelworks.platform.db.models import Job, JobLog
from modelworks.platform.settings import Settings

DEFAULT_LEASE_S = 30.0


@dataclass
class Running:
    claim: queue.Claim
    handle: Handle
    gpus: int
    timeout_s: int | None
    last_beat: float = 0.0
    stopping: str | None = None  # why the worker is stopping it: "cancelled" or a timeout message


class Worker:
    def __init__(
        self,
        settings: Settings,
        *,
        worker_id: str | None = None,
        cpu_slots: int = 1,
        gpu_slots: int = 0,
        lease_s: float = DEFAULT_LEASE_S,
        heartbeat_s: float | None = None,
        poll_s: float = 0.5,
        project_limit: int = queue.DEFAULT_PROJECT_LIMIT,
        executor: Executor | None = None,
    ) -> None:
        self.settings = settings
        self.id = worker_id or f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:6]}"
        self.cpu_slots, self.gpu_slots = cpu_slots, gpu_slots
        self.lease_s = lease_s
        self.heartbeat_s = heartbeat_s if heartbeat_s is not None else max(lease_s / 4, 0.2)
        self.poll_s = poll_s
        self.project_limit = project_limit
        self.executor = executor or make_executor(settings.executor, settings.ray_address)
        self.running: dict[int, Running] = {}
        self._policies_at = 0.0  # when the continual policies were last looked at (monotonic)
        self._engine = make_engine(settings.database_url)
        self.sessions: sessionmaker[Session] = session_factory(self._engine)

    # ---- the loop

    def run(self, stop: threading.Event | None = None) -> None:
        """Work until ``stop`` is set; then stop the children and put their jobs back in the queue."""
        stop = stop or threading.Event()
        try:
            while not stop.is_set():
                self.step()
                stop.wait(self.poll_s)
        finally:
            self.shutdown()

    def step(self) -> None:
        with self.sessions() as session:
            for job_id in queue.reclaim_expired(session, self.lease_s):
                queue.append_logs(session, job_id, [f"[worker {self.id}] requeued: its worker stopped heartbeating"])
                job = session.get(Job, job_id)
                if job.state != "queued":  # ended: no next attempt will clear what the lost one left here
                    clear_working_data(job_folder(self.settings, job.project_id, job_id))
        for item in list(self.running.values()):
            self._supervise(item)
        self._policies()
        self._claim_while_free()

    def _policies(self) -> None:
        """Every ``policy_check_s``: queue the continue jobs of the continual policies due, and close the
        feedback windows that waited their max age (`jobs.policies`)."""
        if time.monotonic() - self._policies_at < self.settings.policy_check_s:
            return
        self._policies_at = time.monotonic()
        with self.sessions() as session:
            try:
                for job_id in run_policies(session, self.settings):
                    queue.append_logs(session, job_id, [f"[worker {self.id}] queued by its continual policy"])
            except Exception as e:  # noqa: BLE001  a policy's problem must not stop the worker's jobs
                print(f"[worker {self.id}] continual policies: {type(e).__name__}: {e}", file=sys.stderr, flush=True)
            try:
                for deployment, version in close_feedback_windows(session, self.settings):
                    print(f"[worker {self.id}] {deployment}'s feedback window closed on time: version {version}",
                          flush=True)  # fmt: skip
            except Exception as e:  # noqa: BLE001  nor a feedback window's
                print(f"[worker {self.id}] feedback windows: {type(e).__name__}: {e}", file=sys.stderr, flush=True)

    def _claim_while_free(self) -> None:
        while len(self.running) < self.cpu_slots:
            free_gpus = self.gpu_slots - sum(r.gpus for r in self.running.values())
            with self.sessions() as session:
                claim = queue.claim(session, self.id, free_gpus=free_gpus, project_limit=self.project_limit)
                if claim is None:
                    return
                job = session.get(Job, claim.job_id)
                gpus, timeout_s = job.gpus, job.timeout_s
                queue.append_logs(session, claim.job_id, [f"[worker {self.id}] attempt {claim.attempt} started"])
            handle = self.executor.submit(claim.job_id, claim.token, self._child_env(gpus), gpus)
            self.running[claim.job_id] = Running(claim, handle, gpus, timeout_s)
            self._beat(self.running[claim.job_id])

    def _child_env(self, gpus: int) -> dict[str, str]:
        """What an attempt needs on top of the environment of the machine that runs it: this
        worker's MODELWORKS_* variables and settings, its AWS_* ones (an S3 artifact store's
        endpoint and credentials), and no GPU for a job that asked for none (a GPU job keeps the
        devices its executor gave it)."""
        env = {k: v for k, v in os.environ.items() if k.startswith(("MODELWORKS_", "AWS_"))}
        env.update(
            MODELWORKS_HOME=str(self.settings.home),
            MODELWORKS_DATABASE_URL=self.settings.database_url,
            MODELWORKS_ARTIFACTS=self.settings.artifacts,
            PYTHONUNBUFFERED="1",
            OMP_NUM_THREADS="1",
            MKL_NUM_THREADS="1",
        )
        if gpus == 0:
            env["CUDA_VISIBLE_DEVICES"] = ""  # a CPU job must not take a GPU slot it did not ask for
        return env

    # ---- one child

    def _supervise(self, item: Running) -> None:
        job_id = item.claim.job_id
        outcome = self.executor.poll(item.handle)
        self._flush_logs(item)
        if outcome is not None:
            del self.running[job_id]
            self._record_end(item, outcome.returncode, outcome.cpu_seconds)
            return
        if (
            item.stopping is None
            and item.timeout_s is not None
            and time.monotonic() - item.handle.started > item.timeout_s
        ):
            item.stopping = f"timed out after {item.timeout_s} s"
            self.executor.cancel(item.handle)
            return
        if time.monotonic() - item.last_beat >= self.heartbeat_s:
            job = self._beat(item)
            if job is None:  # the lease was lost (reclaimed elsewhere): this worker must stop
                item.stopping = "lease lost"
                self.executor.cancel(item.handle)
            elif job.cancel_requested and item.stopping is None:
                item.stopping = "cancelled"
                self.executor.cancel(item.handle)

    def _beat(self, item: Running) -> Job | None:
        item.last_beat = time.monotonic()
        with self.sessions() as session:
            return queue.heartbeat(session, item.claim, pid=item.handle.pid)

    def _flush_logs(self, item: Running) -> None:
        lines = item.handle.drain()
        if lines:
            with self.sessions() as session:
                queue.append_logs(session, item.claim.job_id, lines)

    def _record_end(self, item: Running, returncode: int, cpu_seconds: float) -> None:
        wall = time.monotonic() - item.handle.started
        usage = {"cpu_seconds": cpu_seconds, "gpu_seconds": wall * item.gpus}
        if item.stopping == "cancelled":
            outcome, error, retry = "cancelled", "cancelled", False
        elif item.stopping is not None:
            outcome, error, retry = "failed", item.stopping, False
        elif returncode == 0:
            outcome, error, retry = "succeeded", None, False
        else:
            # Exit 2 is a user error (run_job.main): another attempt would fail the same way.
            outcome, error, retry = (
                "failed",
                f"attempt {item.claim.attempt} exited with status {returncode}: {self._last_error(item)}",
                returncode != 2,
            )
        with self.sessions() as session:
            # The attempt removes its decrypted data itself unless it was killed: then it is done here.
            project_id = session.scalar(select(Job.project_id).where(Job.id == item.claim.job_id))
            clear_working_data(job_folder(self.settings, project_id, item.claim.job_id))
            state = queue.finish(session, item.claim, outcome, error=error, retry=retry, **usage)
            if state is not None:
                note = "requeued for another attempt" if state == "queued" else state
                queue.append_logs(
                    session,
                    item.claim.job_id,
                    [f"[worker {self.id}] attempt {item.claim.attempt} ended (status {returncode}): {note}"],
                )

    def _last_error(self, item: Running) -> str:
        with self.sessions() as session:
            lines = session.scalars(
                select(JobLog.line).where(JobLog.job_id == item.claim.job_id).order_by(JobLog.seq.desc()).limit(1)
            ).all()
        return lines[0][:500] if lines else "no output"

    def shutdown(self) -> None:
        """Stop every child and put its job back in the queue without using up an attempt."""
        for item in list(self.running.values()):
            self.executor.cancel(item.handle)
            self.executor.poll(item.handle)
            self._flush_logs(item)
            with self.sessions() as session:
                queue.release(session, item.claim)
        self.running.clear()
        self._engine.dispose()


def main() -> None:
    """``python -m modelworks.jobs.worker``: a worker with default settings from the environment."""
    Worker(Settings.from_env()).run()


if __name__ == "__main__":
    main()
