"""The engine's orchestration, one step per module:

- `resolve`: make every data-dependent choice once, split the data, fit preprocessing;
- `train`: train a run and write its folder;
- `run`: a trained run with its model loaded (`Run`, `load_run`): predict, evaluate, report;
- `cv`: k-fold cross-validation.

What a run folder holds, and reading it without torch, is `modelworks.store`; the public facade
over all of this is `modelworks.api`.
"""
