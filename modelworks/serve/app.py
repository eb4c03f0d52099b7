"""The serving app: the Open Inference Protocol v2 routes, plain-JSON /predict, and /metrics.

    GET  /v2                                          server metadata
    GET  /v2/health/live, /v2/health/ready            liveness; readiness (every model loaded and warmed up)
    GET  /v2/models/{name}[/versions/{v}]             model metadata (the export's tensor interface)
    GET  /v2/models/{name}[/versions/{v}]/ready       model readiness
    POST /v2/models/{name}[/versions/{v}]/infer       OIP inference, JSON or binary tensors
    POST /v2/models/{name}[/versions/{v}]/predict     raw records -> labels and probabilities
    GET  /v2/models/{name}[/versions/{v}]/config      Triton's model configuration extension (ModelConfig as JSON)
    GET  /v2/models[/{name}[/versions/{v}]]/stats     Triton's statistics extension (inference/execution counts)
    GET  /metrics                                     Prometheus

Every error is answered as ``{"error": "..."}`` with a 4xx status, or 503 (with Retry-After) when
the model's queue is full, a request times out or the server is not ready. `ServeHooks` is the
platform's plug: authorization of each model request and metering of each inference.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import re
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from importlib import metadata
from typing import Any

import orjson
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect

from modelworks.errors import UserError
from modelworks.serve import schemas
from modelworks.serve.batcher import QueueFull
from modelworks.serve.metrics import CONTENT_TYPE, ServeMetrics
from modelworks.serve.modelset import Deployment, ModelSet
from modelworks.serve.protocol import BadRequest, decompress, encode_response, parse_infer
from modelworks.serve.tritonconfig import model_config

EXTENSIONS = ["binary_tensor_data", "statistics", "model_configuration"]
LOG = logging.getLogger(__name__)
INFERENCE_PATH = re.compile(r"/v2/models/([^/]+)(?:/versions/([^/]+))?/(infer|predict)")


@dataclass(frozen=True)
class ServeLimits:
    max_body_bytes: int = 16 << 20
    timeout_s: float = 30.0  # per request, queue and forward pass together
    max_records: int = 10_000  # per /predict request


class ServeError(Exception):
    """An error answered as the OIP body ``{"error": message}``."""

    def __init__(self, status: int, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status, self.message, self.headers = status, message, headers or {}


class ServeHooks:
    """The platform's plug; these defaults allow everyone and count nothing (the laptop case).

    `authorize` may be a coroutine; it raises a starlette HTTPException (401, 403, 429 with
    Retry-After) to refuse. `record` is called once per inference request, answered or not.
    """

    def authorize(self, request: Request, model_name: str) -> Any:
        return None

    def record(self, caller: Any, model_name: str, version: str, rows: int, status: int, latency_s: float) -> None:
        return None

    async def log(self, caller: Any, served: Deployment, records: list[Any], predictions: list[Any]) -> str | None:
        """Log an answered /predict request; its request id (the ``Request-Id`` header), or None."""
        return None

    logs_infer = False  # whether `log_infer` is called: when False, an /infer answer costs nothing more

    async def log_infer(self, caller: Any, served: Deployment, inputs: dict[str, Any], outputs: dict[str, Any]
                        ) -> str | None:  # fmt: skip
        """Log an answered /infer request (its tensors); its request id (the ``Request-Id`` header), or None."""
        return None


def create_app(models: ModelSet, *, hooks: ServeHooks | None = None, limits: ServeLimits | None = None) -> FastAPI:
    """The serving app for `models` (which may change while it runs); see the module docstring."""
    hooks = hooks or ServeHooks()
    limits = limits or ServeLimits()
    metrics = ServeMetrics()
    models.on_add.append(metrics.watch)
    for d in models.all():
        metrics.watch(d)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        app.state.loop = asyncio.get_running_loop()  # for a platform thread that changes `models` (retire)
        warming = asyncio.get_running_loop().create_task(models.warm_up())  # ready once it is done; live at once
        try:
            yield
        finally:
            await warming
            await models.close()  # queued requests are answered first

    app = ServingApp(
        title="modelworks serving",
        version=_version(),
        lifespan=lifespan,
        description="Open Inference Protocol (v2) with the binary tensor data extension, and /predict.",
    )
    app.state.models, app.state.metrics = models, metrics
    _errors(app)

    @app.get("/v2", response_model=schemas.ServerMetadata, tags=["server"])
    async def server_metadata() -> dict[str, Any]:
        return {"name": "modelworks", "version": _version(), "extensions": EXTENSIONS}

    @app.get("/v2/health/live", tags=["server"])
    async def live() -> dict[str, bool]:
        return {"live": True}

    @app.get("/v2/health/ready", tags=["server"], responses={503: {"model": schemas.Error}})
    async def ready() -> dict[str, bool]:
        if not models.ready:
            raise ServeError(503, "not ready: the models are still loading or warming up", {"Retry-After": "1"})
        return {"ready": True}

    @app.get("/metrics", tags=["server"], response_class=Response)
    async def prometheus() -> Response:
        return Response(metrics.exposition(), media_type=CONTENT_TYPE)

    _model_routes(app, models, hooks)
    _inference_routes(app, models, hooks, limits, metrics)
    schemas.install_openapi(app, [schemas.InferRequest, schemas.PredictRequest, schemas.Error])
    return app


def _model_routes(app: FastAPI, models: ModelSet, hooks: ServeHooks) -> None:
    """Model metadata, readiness and statistics."""

    @app.get("/v2/models/stats", tags=["models"])
    @app.get("/v2/models/{name}/stats", tags=["models"])
    @app.get("/v2/models/{name}/versions/{version}/stats", tags=["models"])
    async def statistics(request: Request, name: str | None = None, version: str | None = None) -> dict[str, Any]:
        if name is None:
            chosen = models.all()
        else:
            await _find(request, models, hooks, name, version)
            chosen = [d for d in models.all() if d.name == name and version in (None, d.version)]
        return {"model_stats": [_stats(d) for d in chosen]}

    @app.get("/v2/models/{name}", response_model=schemas.ModelMetadata, tags=["models"])
    @app.get("/v2/models/{name}/versions/{version}", response_model=schemas.ModelMetadata, tags=["models"])
    async def model_metadata(request: Request, name: str, version: str | None = None) -> dict[str, Any]:
        found, _ = await _find(request, models, hooks, name, version)
        return {**found.model.metadata(), "name": found.name, "versions": sorted(models.versions[name])}

    @app.get("/v2/models/{name}/config", tags=["models"])
    @app.get("/v2/models/{name}/versions/{version}/config", tags=["models"])
    async def model_configuration(request: Request, name: str, version: str | None = None) -> dict[str, Any]:
        """Triton's model configuration extension: the model's ModelConfig as JSON."""
        found, _ = await _find(request, models, hooks, name, version)
        return model_config(found)

    @app.get("/v2/models/{name}/ready", tags=["models"])
    @app.get("/v2/models/{name}/versions/{version}/ready", tags=["models"])
    async def model_ready(request: Request, name: str, version: str | None = None) -> dict[str, Any]:
        found, _ = await _find(request, models, hooks, name, version)
        if not found.ready:
            raise ServeError(503, f"model {name!r} is still warming up", {"Retry-After": "1"})
        return {"name": found.name, "ready": True}


class ServingApp(FastAPI):
    """FastAPI, with the two inference routes dispatched before its middleware and router.

    The routes are declared on FastAPI as usual (OpenAPI, and the same handler functions), but an
    inference request goes straight to its handler: FastAPI's layers (middleware, matching every
    route in turn, dependency solving) cost a one-row request more CPU than parsing and batching it,
    and on a CPU-bound server that is throughput lost. Errors are answered as the routes answer them.
    """

    fast: dict[str, Any]  # "infer" / "predict" -> handler(request, name, version), set by create_app

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http" and scope["method"] == "POST":
            match = INFERENCE_PATH.fullmatch(scope["path"])
            if match is not None and getattr(self, "fast", None):
                name, version, route = match.groups()
                scope["app"] = self
                await (await _answer(self.fast[route], Request(scope, receive), name, version))(scope, receive, send)
                return
        await super().__call__(scope, receive, send)


async def _answer(handler: Any, request: Request, name: str, version: str | None) -> Response:
    try:
        return await handler(request, name, version)
    except ServeError as e:
        return JSONResponse({"error": e.message}, e.status, headers=e.headers)
    except HTTPException as e:
        return JSONResponse({"error": str(e.detail)}, e.status_code, headers=getattr(e, "headers", None))
    except Exception as e:  # noqa: BLE001 - a bug, not a bad request: still an OIP body
        LOG.exception("inference request failed")
        return JSONResponse({"error": f"internal error: {type(e).__name__}"}, 500)


def _inference_routes(app: ServingApp, models: ModelSet, hooks: ServeHooks, limits: ServeLimits,
                      metrics: ServeMetrics) -> None:  # fmt: skip
    """infer (OIP, JSON or binary tensors) and predict (raw records), each also under /versions/{version}."""

    @app.post(
        "/v2/models/{name}/infer",
        response_model=schemas.InferResponse,
        tags=["inference"],
        openapi_extra=schemas.body(schemas.InferRequest, binary=True),
    )
    @app.post(
        "/v2/models/{name}/versions/{version}/infer",
        response_model=schemas.InferResponse,
        tags=["inference"],
        openapi_extra=schemas.body(schemas.InferRequest, binary=True),
    )
    async def infer(request: Request, name: str, version: str | None = None) -> Response:
        started = time.perf_counter()
        found, caller = await _find(request, models, hooks, name, version)
        status, rows = 500, 0
        try:
            raw = decompress(await _body(request, limits), request.headers.get("Content-Encoding"))
            parsed = parse_infer(raw, request.headers.get("Inference-Header-Content-Length"), found.model.inputs,
                                 found.model.outputs, found.model.tokenize)  # fmt: skip
            rows = parsed.rows
            timeout = min(limits.timeout_s, parsed.timeout_s or limits.timeout_s)
            outputs = await _submit(found, parsed.inputs, timeout)
            body, headers = encode_response(found.name, found.version, parsed, outputs, found.model.outputs)
            status = 200
            if hooks.logs_infer and (request_id := await hooks.log_infer(caller, found, parsed.inputs, outputs)):
                headers["Request-Id"] = request_id  # feedback (modelworks.streams.feedback): off, not reached
            return Response(body, headers=headers)
        except BadRequest as e:
            status = 400
            raise ServeError(400, str(e)) from e
        except ServeError as e:
            status = e.status
            raise
        finally:
            _count(hooks, metrics, caller, found, "infer", rows, status, time.perf_counter() - started)

    @app.post(
        "/v2/models/{name}/predict",
        response_model=schemas.PredictResponse,
        tags=["inference"],
        openapi_extra=schemas.body(schemas.PredictRequest),
    )
    @app.post(
        "/v2/models/{name}/versions/{version}/predict",
        response_model=schemas.PredictResponse,
        tags=["inference"],
        openapi_extra=schemas.body(schemas.PredictRequest),
    )
    async def predict(request: Request, name: str, version: str | None = None) -> Response:
        started = time.perf_counter()
        found, caller = await _find(request, models, hooks, name, version)
        status, rows = 500, 0
        try:
            records = _records(await _body(request, limits), limits)
            rows = len(records)
            try:
                inputs = await run_in_threadpool(found.model.encode, records)  # decoding images, tokenizing
            except UserError as e:
                raise ServeError(400, str(e)) from e
            outputs = await _submit(found, inputs, limits.timeout_s)
            status = 200
            predictions = found.model.decode(outputs, rows)
            answer = {"model_name": found.name, "model_version": found.version, "predictions": predictions}
            response = Response(orjson.dumps(answer), media_type="application/json")  # response_model: the docs only
            if (request_id := await hooks.log(caller, found, records, predictions)) is not None:
                response.headers["Request-Id"] = request_id
            return response
        except ServeError as e:
            status = e.status
            raise
        finally:
            _count(hooks, metrics, caller, found, "predict", rows, status, time.perf_counter() - started)

    app.fast = {"infer": infer, "predict": predict}


# ---------------------------------------------------------------------------------- helpers


async def _find(request: Request, models: ModelSet, hooks: ServeHooks, name: str, version: str | None
                ) -> tuple[Deployment, Any]:  # fmt: skip
    """(the deployment a model request goes to, the caller the hooks authorized); 404 when not served."""
    caller = hooks.authorize(request, name)
    if inspect.isawaitable(caller):
        caller = await caller
    found = models.pick(name, version)
    if found is None:
        what = f"model {name!r}" + ("" if version is None else f" version {version!r}")
        raise ServeError(404, f"{what} is not served here")
    return found, caller


async def _body(request: Request, limits: ServeLimits) -> bytes:
    """The request body, refused with 413 past the size limit (without reading the rest)."""
    declared = request.headers.get("Content-Length")
    if declared is not None and declared.isdigit() and int(declared) > limits.max_body_bytes:
        raise ServeError(413, f"the request body ({declared} bytes) is over the limit of {limits.max_body_bytes}")
    chunks, size = [], 0
    try:
        async for chunk in request.stream():
            size += len(chunk)
            if size > limits.max_body_bytes:
                raise ServeError(413, f"the request body is over the limit of {limits.max_body_bytes} bytes")
            chunks.append(chunk)
    except ClientDisconnect as e:
        raise ServeError(400, "the client went away before sending the whole body") from e
    return b"".join(chunks)


def _records(body: bytes, limits: ServeLimits) -> list[Any]:
    try:
        payload = orjson.loads(body)
    except orjson.JSONDecodeError as e:
        raise ServeError(400, f"the request is not valid JSON: {e}") from e
    records = payload.get("instances") if isinstance(payload, dict) else None
    if not isinstance(records, list) or not records:
        raise ServeError(400, 'the request must be {"instances": [record, ...]} with at least one record')
    if len(records) > limits.max_records:
        raise ServeError(413, f"at most {limits.max_records} records per request; got {len(records)}")
    return records


async def _submit(found: Deployment, inputs: dict[str, Any], timeout_s: float) -> dict[str, Any]:
    try:
        return await found.batcher.submit(inputs, timeout_s)
    except QueueFull as e:
        raise ServeError(503, str(e), {"Retry-After": str(max(1, round(e.retry_after_s)))}) from e
    except TimeoutError as e:
        raise ServeError(503, f"the request timed out after {timeout_s:g} s", {"Retry-After": "1"}) from e
    except (ValueError, RuntimeError) as e:  # the runtime refused these tensors (onnxruntime: its own subclasses)
        raise ServeError(400, f"the model could not run on these inputs: {' '.join(str(e).split())[:300]}") from e


def _count(hooks: ServeHooks, metrics: ServeMetrics, caller: Any, found: Deployment, route: str, rows: int,
           status: int, latency_s: float) -> None:  # fmt: skip
    metrics.request(found.name, found.version, route, status, rows, latency_s)
    hooks.record(caller, found.name, found.version, rows, status, latency_s)


def _stats(d: Deployment) -> dict[str, Any]:
    """One model's statistics in the shape of Triton's statistics extension."""
    s = d.batcher.stats

    def duration(count: int, seconds: float) -> dict[str, int]:
        return {"count": count, "ns": int(seconds * 1e9)}

    return {
        "name": d.name, "version": d.version, "last_inference": s.last_inference_ms,
        "inference_count": s.inferences, "execution_count": s.executions,
        "inference_stats": {
            "success": duration(s.requests, s.queue_s + s.compute_s), "fail": duration(s.failures, 0),
            "queue": duration(s.requests, s.queue_s), "compute_infer": duration(s.executions, s.compute_s),
        },
        "batch_stats": [],
    }  # fmt: skip


def _errors(app: FastAPI) -> None:
    """Every error as the OIP body {"error": ...}."""

    @app.exception_handler(ServeError)
    async def serve_error(request: Request, e: ServeError) -> JSONResponse:
        return JSONResponse({"error": e.message}, e.status, headers=e.headers)

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, e: HTTPException) -> JSONResponse:
        return JSONResponse({"error": str(e.detail)}, e.status_code, headers=getattr(e, "headers", None))

    @app.exception_handler(Exception)
    async def bug(request: Request, e: Exception) -> JSONResponse:  # a bug, not a bad request: still an OIP body
        return JSONResponse({"error": f"internal error: {type(e).__name__}"}, 500)

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, e: RequestValidationError) -> JSONResponse:
        return JSONResponse({"error": str(e.errors()[0].get("msg", "invalid request"))}, 400)


def _version() -> str:
    try:
        return metadata.version("modelworks")
    except metadata.PackageNotFoundError:
        return "0"
