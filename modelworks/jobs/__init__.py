"""Jobs: a durable queue in the platform database, workers that run each job in its own process.

=================  ===============================================================
module             holds
=================  ===============================================================
``queue``          submit, list, cancel; the atomic claim, heartbeats, outcomes, usage
``executor``       the `Executor` interface (submit/poll/cancel) and `LocalExecutor`
``worker``         the worker loop: claim, supervise, heartbeat, cancel, timeout, retry
``run_job``        the child process: one attempt of one job (``python -m``)
=================  ===============================================================
"""
