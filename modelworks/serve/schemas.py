"""Pydantic models of the serving bodies, for the OpenAPI document (the routes parse bodies
themselves: the binary tensor extension is not JSON, and every error must be an OIP body)."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from pydantic import BaseModel, Field


class Tensor(BaseModel):
    name: str
    shape: list[int]
    datatype: str = Field(description="FP32, INT64, ...")
    parameters: dict[str, Any] | None = Field(None, description="binary_data_size: bytes of this tensor after the JSON")
    data: list[Any] | None = Field(None, description="row-major values (absent when sent as binary)")


class RequestedOutput(BaseModel):
    name: str
    parameters: dict[str, Any] | None = Field(None, description="binary_data: true to receive it as raw bytes")


class InferRequest(BaseModel):
    """OIP inference request; with the header Inference-Header-Content-Length, the JSON is followed by
    the binary tensors."""

    id: str | None = None
    parameters: dict[str, Any] | None = Field(None, description="binary_data_output, timeout (microseconds)")
    inputs: list[Tensor]
    outputs: list[RequestedOutput] | None = None


class InferResponse(BaseModel):
    model_name: str
    model_version: str
    id: str | None = None
    outputs: list[Tensor]


class TensorMetadata(BaseModel):
    name: str
    datatype: str
    shape: list[int] = Field(description="-1: a free axis (the batch, a text's length)")


class ModelMetadata(BaseModel):
    name: str
    versions: list[str]
    platform: str
    inputs: list[TensorMetadata]
    outputs: list[TensorMetadata]


class ServerMetadata(BaseModel):
    name: str
    version: str
    extensions: list[str]


class PredictRequest(BaseModel):
    """Raw records: table rows ({column: value}), texts ({column: "..."}), images ({column: base64 file})."""

    instances: list[dict[str, Any]]


class Prediction(BaseModel):
    prediction: Any = Field(description="the label (classification) or the value (regression)")
    probabilities: dict[str, float] | None = Field(None, description="classification: one per class")


class PredictResponse(BaseModel):
    model_name: str
    model_version: str
    predictions: list[Prediction]


class Error(BaseModel):
    error: str


def body(model: type[BaseModel], binary: bool = False) -> dict[str, Any]:
    """openapi_extra declaring `model` as a route's request body (parsed by the route itself)."""
    content = {"application/json": {"schema": {"$ref": f"#/components/schemas/{model.__name__}"}}}
    if binary:
        content["application/octet-stream"] = {"schema": {"type": "string", "format": "binary"}}
    return {"requestBody": {"required": True, "content": content}}


def install_openapi(app: FastAPI, models: list[type[BaseModel]]) -> None:
    """Add the request-body models (not seen by FastAPI) to the app's OpenAPI components."""

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = get_openapi(title=app.title, version=app.version, description=app.description, routes=app.routes)
            components = schema.setdefault("components", {}).setdefault("schemas", {})
            for model in models:
                found = model.model_json_schema(ref_template="#/components/schemas/{model}")
                components.update(found.pop("$defs", {}))
                components[model.__name__] = found
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
