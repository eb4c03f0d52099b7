"""Export a trained run to a portable format, checked against PyTorch before it is published.

    modelworks export RUN --format onnx [--quantize int8] [--opset 18] [--output DIR]
    modelworks.export(run, "onnx", {"quantize": "int8"})

A format is declared in `FORMATS` (`modelworks.exporting.formats`) with its typed options class
and the import path of its implementation: ``onnx`` (`modelworks.exporting.onnx`) and
``torchscript`` (`modelworks.exporting.torchscript`). Each one writes its model file, runs it over
the run's whole test split and compares the outputs with PyTorch's (`modelworks.exporting.check`);
a mismatch is a UserError, and so is a layer the exporter cannot express (named by
`modelworks.exporting.guard`). `modelworks.exporting.export.export_run` does the rest.

The exported model takes positional tensors and returns raw outputs
(`modelworks.exporting.interface`). The export folder, ``RUN/export/<format>/`` by default, holds:

=====================  ========================================================================
file                   holds
=====================  ========================================================================
``model.onnx``         the model (``model.pt`` for TorchScript; plus ``model.int8.onnx`` if asked)
``config.yaml``        the run's resolved config, byte for byte
``preprocess.json``    the run's fitted preprocessing state (scalers, label encoding, tokenizers), byte for byte
``inputs.json``        the tensor interface: names, dtypes, shapes, how to build each from raw data
``README.md``          the same, for people
``export.json``        format, versions, the check's result (max diff, rows, passed), quantization,
                       and the SHA-256 of every other file
=====================  ========================================================================

So the folder is self-describing: ``modelworks serve EXPORT_DIR`` serves it with ONNX Runtime
(`modelworks.serve.model.ServedModel`) copied anywhere, its run folder gone, and refuses a file
that is missing or changed since export, naming it.

export.json and inputs.json are typed in `modelworks.store.export`. This package's ``__init__``
imports only the light `formats` module; adding a format is its options class and one
`FORMATS.declare(...)` line there, its implementation in a new file, and the contract suite
(tests/exporting/test_contract.py) picks it up.
"""

from modelworks.exporting.formats import FORMATS, ExportJob, parse_options

__all__ = ["FORMATS", "ExportJob", "parse_options"]
