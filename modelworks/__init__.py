"""modelworks: build deep-learning models end to end from one YAML file.

    import modelworks
    run = modelworks.train("exp.yaml")
    run.predict(frame)
"""

__version__ = "0.1.0"
__all__ = ["train", "load_run", "cross_validate", "Run", "UserError"]


def __getattr__(name: str):
    # The facade is imported on first use so that `import modelworks.errors` stays light.
    if name in ("train", "load_run", "cross_validate", "Run"):
        from modelworks import api

        return getattr(api, name)
    if name == "UserError":
        from modelworks.errors import UserError

        return UserError
    raise AttributeError(f"module 'modelworks' has no attribute {name!r}")
