"""The runner of each job kind, one module per kind: the function that runs one attempt of a job
in its child process (`modelworks.jobs.run_job`) by calling the public facade, `modelworks.api`.

Each is declared, with the kind's config, checks and facts, in `modelworks.job_kinds` and
imported from there by path on first use. A runner returns the job's result (a JSON object, its
``run`` the run folder when the kind leaves one) and streams metric points while it works.
"""
