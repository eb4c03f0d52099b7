"""The executors a worker can run attempts with, by name (the ``executor`` setting,
``MODELWORKS_EXECUTOR`` / ``--executor``).

=========  ==========================================================================
``local``  `modelworks.jobs.executor.LocalExecutor`: a child process on this machine
``ray``    `modelworks.jobs.ray_executor.RayExecutor`: the same child in an actor on a Ray
           cluster (``ray_address``); needs the ``ray`` extra
=========  ==========================================================================

Each is declared by import path, so that the ray package is imported only when it is used.
``address``: the executor is built with the cluster address; ``extra``: the optional
dependencies it needs, named in the error when they are missing.
"""

from __future__ import annotations

import importlib

from modelworks.errors import UserError
from modelworks.jobs.executor import Executor
from modelworks.registry import Registry

EXECUTORS: Registry = Registry("executor")
EXECUTORS.declare("local", impl="modelworks.jobs.executor:LocalExecutor", address=False, extra=None)
EXECUTORS.declare("ray", impl="modelworks.jobs.ray_executor:RayExecutor", address=True, extra="ray")


def make_executor(name: str, ray_address: str | None = None) -> Executor:
    """The executor named by the worker's settings, connected here (a wrong address fails at start,
    not at the first job)."""
    if name not in EXECUTORS:
        raise UserError(f"unknown executor {name!r}; use {' or '.join(repr(n) for n in EXECUTORS.names())}")
    entry = EXECUTORS.get(name)
    module, _, attr = (entry.impl_path or "").partition(":")
    try:
        # Imported here rather than through `entry.impl`, which would remember the class: an
        # executor whose package went missing is reported every time.
        cls = getattr(importlib.import_module(module), attr)
    except ImportError as e:
        extra = entry.meta["extra"]
        raise UserError(
            f"the {name} executor needs the {extra} package ({e.msg}); "
            f"install it with: pip install 'modelworks[{extra}]'"
        ) from e
    return cls(ray_address) if entry.meta["address"] else cls()
