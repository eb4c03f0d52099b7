"""modelworks: build deep-learning models end to end from one YAML file.

    import modelworks
    run = modelworks.train("exp.yaml")
    run.predict(frame)

The stage packages are named for the activity (`training`, `tuning`, `compression`, `exporting`)
so that they never shadow the facade functions `train`, `tune`, `compress` and `export`.
"""

__version__ = "0.1.0"
__all__ = [
    "Client", "Run", "StoredRun", "TrialRecord", "UserError", "check_job_config", "compress", "cross_validate",
    "export", "load_run", "train", "tune",
]  # fmt: skip

_FACADE = {
    "train", "load_run", "cross_validate", "Run", "StoredRun", "TrialRecord", "tune", "compress", "export",
    "check_job_config",
}  # fmt: skip


def __getattr__(name: str):
    # Imported on first use, so that `import modelworks.errors` stays light (and `modelworks --help` quick).
    if name in _FACADE:
        from modelworks import api

        return getattr(api, name)
    if name == "UserError":
        from modelworks.errors import UserError

        return UserError
    if name == "Client":
        from modelworks.client import Client

        return Client
    raise AttributeError(f"module 'modelworks' has no attribute {name!r}")
