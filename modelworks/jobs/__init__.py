"""Jobs: a durable queue in the platform database, workers that run each job in its own process.

=================  ===============================================================
module             holds
=================  ===============================================================
``configs``        what each kind of job may be asked to do, checked before it is queued
``queue``          submit, list, cancel; the atomic claim, heartbeats, outcomes, usage
``executor``       the `Executor` interface (submit/poll/cancel) and `LocalExecutor`
``ray_executor``   `RayExecutor`: the same attempts in actors on a Ray cluster
``worker``         the worker loop: claim, supervise, heartbeat, cancel, timeout, retry
``run_job``        the child process: one attempt of one job (``python -m``), which
                   publishes and records the run it made
=================  ===============================================================
"""
