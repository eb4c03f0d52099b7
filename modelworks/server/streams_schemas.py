"""Request and response bodies of the data-arrival routes (`modelworks.server.routers.streams`)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field, StrictBool

from modelworks.server.schemas import DatasetVersionOut, Name, RequestBody


class WindowOut(BaseModel):
    """What an appended version added to its parent, and from where."""

    version: int
    base_version: int | None = Field(description="the version whose rows come first; null for a dataset's first rows")
    rows_appended: int
    origin: str = Field(description="http, redis, folder or feedback")
    source_key: str = Field(description="the stream, folder or deployment the rows came from")
    first_offset: str | None = Field(description="the first stream entry id, or the file's name")
    last_offset: str | None
    detail: dict[str, Any]
    created_at: datetime


class AppendedVersionOut(DatasetVersionOut):
    appended: WindowOut


class RequestLogIn(RequestBody):
    enabled: StrictBool = Field(description="log each /predict row and its prediction, sealed with the data key")
    dataset: Name | None = Field(None, description="where labelled rows are appended; default <deployment>-feedback")
    window_rows: int = Field(1, ge=1, le=100_000, description="labelled rows gathered before a version is stored")
    max_age_s: float | None = Field(
        None, gt=0, le=366 * 86_400, description="... or once the oldest of them has waited this long (null: never)"
    )


class RequestLogOut(BaseModel):
    deployment: str
    enabled: bool
    dataset: str
    window_rows: int
    max_age_s: float | None
    logged: int = Field(description="rows logged so far")
    labelled: int = Field(description="rows given their label")
    pending: int = Field(description="labelled rows not yet in a dataset version")


class FeedbackIn(RequestBody):
    request_id: str = Field(pattern=r"^[0-9a-f]{32}$", description="the Request-Id header of the /predict answer")
    row: int = Field(0, ge=0, le=1_000_000, description="which row of that request, from 0")
    label: Any = Field(description="the true value of the target, of the type the model predicts")


class FlushOut(RequestLogOut):
    version: int | None = Field(description="the version the labelled rows were stored as; null when none waited")


class FeedbackOut(BaseModel):
    request_id: str
    row: int
    dataset: str
    pending: int = Field(description="labelled rows waiting for the window to fill")
    version: int | None = Field(description="the dataset version this label's window was stored as, if it was")
