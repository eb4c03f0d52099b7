"""Data arrival: rows appended to a dataset (editors), the windows a dataset's versions hold
(viewers), a deployment's request logging (editors) and the labels that feedback attaches to
logged requests (editors)."""

from __future__ import annotations

import json
from typing import Annotated

import anyio
from fastapi import APIRouter, Query, Request

from modelworks.platform.errors import Unprocessable
from modelworks.platform.names import check_name
from modelworks.server.dependencies import DbSession, Editor, Paging, PathName, Viewer
from modelworks.server.routers.datasets import store_of, version_out
from modelworks.server.schemas import Page
from modelworks.server.streams_schemas import (
    AppendedVersionOut,
    FeedbackIn,
    FeedbackOut,
    FlushOut,
    RequestLogIn,
    RequestLogOut,
    WindowOut,
)
from modelworks.streams import append, feedback, rows

router = APIRouter(prefix="/projects/{project}", tags=["streams"])
ROWS_PATH = router.prefix + "/datasets/{name}/rows"  # its body may be as large as an upload

ROWS_BODY = {
    "requestBody": {
        "required": True,
        "description": "the rows: a JSON list of objects (column: value), or CSV text with a header line",
        "content": {
            "application/json": {
                "schema": {"type": "array", "items": {"type": "object", "minProperties": 1}, "minItems": 1}
            },
            "text/csv": {"schema": {"type": "string"}},
        },
    }
}


def window_out(w) -> WindowOut:
    return WindowOut(
        version=w.version.version, base_version=w.base_version, rows_appended=w.rows_appended, origin=w.origin,
        source_key=w.source_key, first_offset=w.first_offset, last_offset=w.last_offset, detail=w.detail,
        created_at=w.created_at,
    )  # fmt: skip


@router.post("/datasets/{name}/rows", status_code=201, openapi_extra=ROWS_BODY)
async def append_rows(
    name: PathName,
    request: Request,
    access: Editor,
    session: DbSession,
    public: Annotated[bool, Query(description="store unencrypted (only for a dataset's first rows)")] = False,
) -> AppendedVersionOut:
    """Append rows to dataset ``name``: its next version holds the newest version's rows followed
    by these, checked against its schema (a dataset's first rows make its first version)."""
    check_name("dataset", name)
    store = store_of(request)
    body = bytearray()
    async for chunk in request.stream():  # bounded by the upload limit (BodyLimits)
        body += chunk
    csv = request.headers.get("content-type", "").split(";")[0].strip().lower() == "text/csv"

    def run():
        schema = append.latest_schema(session, access.project, name)
        records = rows.records_from_csv(bytes(body), schema) if csv else _json_rows(bytes(body))
        window = append.Window(origin="http", source_key=f"user:{access.user.name}")
        new_format = "csv" if csv else "jsonl"
        row = append.append_rows(session, store, access, name, records, window, new_format=new_format, public=public)
        last, _ = append.windows(session, access.project, name, limit=1)
        return row, last[0]

    row, window = await anyio.to_thread.run_sync(run)
    return AppendedVersionOut(**version_out(row, opened_by=store).model_dump(), appended=window_out(window))


def _json_rows(body: bytes) -> list:
    try:
        payload = json.loads(body)
    except (UnicodeDecodeError, ValueError) as e:
        raise Unprocessable(f"the body is not JSON ({e}); send a list of rows, or CSV as text/csv") from None
    if isinstance(payload, dict) and set(payload) == {"rows"}:
        payload = payload["rows"]
    return payload


@router.get("/datasets/{name}/windows")
def list_windows(name: PathName, access: Viewer, session: DbSession, paging: Paging) -> Page[WindowOut]:
    """The dataset's appended versions, newest first: how many rows each added, from where, and the
    offsets (stream entry ids, file names) they span."""
    items, total = append.windows(session, access.project, name, paging.limit, paging.offset)
    return Page[WindowOut](items=[window_out(w) for w in items], total=total, limit=paging.limit, offset=paging.offset)


# --- feedback from serving


@router.put("/deployments/{name}/request-log")
def set_request_log(name: PathName, body: RequestLogIn, access: Editor, session: DbSession) -> RequestLogOut:
    """Turn a deployment's request logging on or off, and name the dataset its labelled rows go to: a
    version per ``window_rows`` labelled rows, or once the oldest has waited ``max_age_s``."""
    setting = feedback.set_logging(session, access, name, body.enabled, body.dataset, body.window_rows, body.max_age_s)
    return RequestLogOut(**feedback.summary(session, setting))


@router.get("/deployments/{name}/request-log")
def get_request_log(name: PathName, access: Viewer, session: DbSession) -> RequestLogOut:
    return RequestLogOut(**feedback.summary(session, feedback.get_logging(session, access.project, name)))


@router.post("/deployments/{name}/feedback", status_code=201)
def post_feedback(
    name: PathName, body: FeedbackIn, request: Request, access: Editor, session: DbSession
) -> FeedbackOut:
    """Attach the true label to a logged request's row; once the deployment's window of labelled rows
    is full, they are appended (inputs and label) to its dataset as a new version."""
    return FeedbackOut(**feedback.attach_label(session, store_of(request), access, name, body.request_id, body.row,
                                               body.label))  # fmt: skip


@router.post("/deployments/{name}/feedback/flush")
def flush_feedback(name: PathName, request: Request, access: Editor, session: DbSession) -> FlushOut:
    """Store the labelled rows waiting for their window now, however few (a window closed by time)."""
    return FlushOut(**feedback.flush(session, store_of(request), access, name))
