"""The public facade: what the CLI, the tests, and later the server and job workers call.

    run = modelworks.train("exp.yaml", overrides=["train.lr=0.003"])
    run.evaluate()                      # metrics on the test split
    run.predict(frame, proba=True)      # a DataFrame of predictions
    run = modelworks.load_run("runs/exp-20261123-101500")
"""

from __future__ import annotations

from modelworks.pipeline import Run, cross_validate, load_run, train

__all__ = ["Run", "cross_validate", "load_run", "train"]

# --- tune facade (issue 3) ---

# --- compress facade (issue 3) ---

# --- export facade (issue 3) ---
