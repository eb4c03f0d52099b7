"""Model compression: each method turns a trained run into a new, smaller or faster run.

    modelworks compress runs/cnn-20261123-101500 --method prune --set amount=0.5 --set finetune_epochs=2
    modelworks.compress(run, "prune", {"amount": 0.5, "finetune_epochs": 2})

=======================  ====================================================================
module                   holds
=======================  ====================================================================
``methods``              the registry `COMPRESSORS`: each method's typed options, declared with
                         the import path of its implementation; `parse_options`; `restore_model`
                         (how `load_run` reopens a compressed run)
``method``               `Method` (apply, restore) and the helpers the methods share
``quantize``, ``prune``  the methods (quantize-dynamic, quantize-static, prune, distill, half)
``distill``, ``half``
``compress``             `compress_run`: make, store and measure the new run
``measure``              the comparison with the parent stored in compression.json
``storage``              compressed weights in safetensors, sparse tensors packed
=======================  ====================================================================

Adding a method: its options class and one `COMPRESSORS.declare(...)` line in ``methods.py``,
its `Method` in a new file; the contract suite (tests/compression/test_contract.py) picks it up.

This package's ``__init__`` imports only the light `methods` module: the engine (`load_run`)
depends on the registry, and the implementations (torch, the training loop) are imported when
a method is used.
"""

from modelworks.compression.methods import COMPRESSORS, MethodOptions, parent_refusal, parse_options, restore_model

__all__ = ["COMPRESSORS", "MethodOptions", "parent_refusal", "parse_options", "restore_model"]
