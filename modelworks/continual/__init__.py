"""Continual learning in the engine: a run that continues from a parent run.

- `config`: the ``train.init_from``, ``train.replay`` and ``train.parent_penalty`` sections (torch-free);
- `warm_start`: the parent run, its inherited preprocessing and weights, and the architecture check;
- `replay`: the class-balanced reservoir of training rows and the frozen holdout of old test rows;
- `penalty`: L2 and EWC distance to the parent's weights;
- `continuation`: what a continuation does around training, and what it reports.
"""
