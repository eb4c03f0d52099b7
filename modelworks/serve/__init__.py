"""Serving a trained model over HTTP: the Open Inference Protocol (v2 REST, with binary tensors),
plain-JSON /predict, dynamic batching, and Prometheus metrics.

    modelworks serve RUN_OR_EXPORT_DIR [--runtime torch|onnx] [--precision fp32|bf16] [--port 8080]
                     [--max-batch 32 --max-delay-ms 5]

====================  ==============================================================================
module                holds
====================  ==============================================================================
``model.py``          `ServedModel`: one model loaded (torch or ONNX Runtime), tensors and records
``precision.py``      `Precision`, `check_precision`: fp32, or bf16 for torch (torch-free; the platform checks with it)
``batcher.py``        `DynamicBatcher`: concurrent requests gathered into one forward pass
``modelset.py``       `ModelSet`, `Deployment`, `deploy`: what is served, routing and canaries
``protocol.py``       the OIP inference bodies, JSON and binary (BYTES text inputs too)
``app.py``            `create_app`, `ServeHooks`, `ServeLimits`: the routes (inference ones before FastAPI's layers)
``tritonconfig.py``   a served model as Triton's ModelConfig (``GET .../config``)
``metrics.py``        the Prometheus series
``schemas.py``        the bodies as pydantic models, for the OpenAPI document
``server.py``         `serve`: uvicorn with a graceful SIGTERM
``scratch.py``        a platform replica's scratch folder; a killed replica's swept on the next start
====================  ==============================================================================

A model that outgrows this server moves to NVIDIA Triton with ``modelworks export RUN --format triton``
(`modelworks.exporting.triton`). This ``__init__`` imports nothing heavy; import the modules you need.
"""
