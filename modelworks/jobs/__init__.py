"""Jobs: a durable queue in the platform database, workers that run each job in its own process.

The kinds of job, their configs and their engine-side checks are declared in `modelworks.job_kinds`
(a light module the database models and the server's schema read too); this package talks to the
engine only through the public facade, `modelworks.api`.

=================  ===============================================================
module             holds
=================  ===============================================================
``check``          a job's config checked before it is queued: the facade's check of
                   its kind, and the job it starts from looked up in the database
``queue``          submit, list, cancel; the atomic claim, heartbeats, outcomes, usage
``executor``       the `Executor` interface (submit/poll/cancel) and `LocalExecutor`
``ray_executor``   `RayExecutor`: the same attempts in actors on a Ray cluster
``executors``      the executors by name (the ``executor`` setting)
``worker``         the worker loop: claim, supervise, heartbeat, cancel, timeout, retry
``run_job``        the child process: one attempt of one job (``python -m``), which
                   runs the kind's runner, then publishes and records the run it made
``attempt``        the attempt's fenced link to its job row, and what runners share
``kinds``          one runner per job kind (``kinds/train.py``, ...)
=================  ===============================================================
"""
