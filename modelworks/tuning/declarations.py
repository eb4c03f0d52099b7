"""The samplers and pruners a search may name, declared without optuna or torch.

`modelworks.config.schema.TuneConfig` takes its ``sampler`` and ``pruner.type`` choices from these
registries, so the schema stays light; each implementation (in `factories`) builds the Optuna
object from the search and is imported on first use. Adding a sampler or a pruner is one
declaration here and one factory there; the contract test in ``tests/tuning`` picks it up.

A pruner's ``options`` are the `PrunerConfig` fields it reads; setting another one is allowed
(as before) but has no effect.
"""

from __future__ import annotations

from modelworks.registry import Registry

SAMPLERS: Registry = Registry("sampler")
SAMPLERS.declare("tpe", impl="modelworks.tuning.factories:tpe")
SAMPLERS.declare("random", impl="modelworks.tuning.factories:random")
SAMPLERS.declare("grid", impl="modelworks.tuning.factories:grid")  # choice and int dimensions only (the schema checks)

PRUNERS: Registry = Registry("pruner")
PRUNERS.declare("none", impl="modelworks.tuning.factories:no_pruning", options=())
PRUNERS.declare("median", impl="modelworks.tuning.factories:median", options=("startup_trials", "warmup_epochs"))
PRUNERS.declare("hyperband", impl="modelworks.tuning.factories:hyperband", options=("min_epochs", "reduction_factor"))
PRUNERS.declare(
    "successive_halving",
    impl="modelworks.tuning.factories:successive_halving",
    options=("min_epochs", "reduction_factor"),
)

SAMPLER_NAMES = tuple(e.name for e in SAMPLERS)  # in declaration order, for the schema's Literal
PRUNER_NAMES = tuple(e.name for e in PRUNERS)
