"""Feedback from serving: a deployment's logged requests, and the true labels attached to them later.

A deployment opts in (`set_logging`). Its serving process then logs each /predict row with its
prediction (`RequestLog.log`, called from the serving hooks), and each /infer row rebuilt from
its input tensors (`RequestLog.log_tensors`, `modelworks.streams.tensors`), sealed with the
platform's data key (`modelworks.platform.crypto.seal`), under a fresh request id that the answer
carries in its ``Request-Id`` header. A feedback call (`attach_label`) gives a logged row its true label: an
unknown request id is a 422, a label of another type than the model predicts (or a class the
model does not know) a 422, a second label for the same row a 409. Once ``window_rows`` labelled
rows have gathered, they are appended — the logged input columns plus the target column holding
the label — to the deployment's dataset as a new version (`modelworks.streams.append`), in the
same transaction that marks them appended, so no row is appended twice. A window also closes on
time: `close_aged` stores the labelled rows of each deployment whose oldest has waited
``max_age_s`` (the workers call it on their policy clock); `flush` stores them at once.
"""

from __future__ import annotations

import base64
import json
import logging
import math
import threading
import time
import uuid
from datetime import datetime
from typing import Any

import anyio
from sqlalchemy import func, select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from modelworks.errors import UserError
from modelworks.platform import audit
from modelworks.platform.access import ProjectAccess, authorize_project
from modelworks.platform.crypto import Keyring, seal, unseal
from modelworks.platform.datasets import DataStore
from modelworks.platform.db.models import DatasetVersion, Project, utcnow
from modelworks.platform.db.serving import Deployment
from modelworks.platform.db.streams import LoggedRequest, RequestLogSetting
from modelworks.platform.deployments import get_deployment
from modelworks.platform.errors import Conflict, Unprocessable
from modelworks.platform.names import check_name
from modelworks.platform.roles import Role
from modelworks.streams import append, tensors
from modelworks.streams.rows import Schema, check_records

log = logging.getLogger("modelworks.streams.feedback")
REQUEST_ID_HEADER = "Request-Id"
SETTINGS_CACHE_S = 2.0  # a serving process sees a change of the setting within this


def _sealed(value: Any, keyring: Keyring) -> str:
    return base64.b64encode(seal(json.dumps(value, ensure_ascii=False).encode(), keyring)).decode("ascii")


def _opened(text: str, keyring: Keyring) -> Any:
    return json.loads(unseal(base64.b64decode(text), keyring))


# ------------------------------------------------------------------------------- the setting


def get_logging(session: Session, project: Project, name: str) -> RequestLogSetting:
    """Deployment ``name``'s request logging (off, into ``<name>-feedback``, when never set)."""
    deployment = get_deployment(session, project, name)
    setting = session.get(RequestLogSetting, deployment.id)
    if setting is None:
        setting = RequestLogSetting(
            deployment=deployment, enabled=False, dataset=f"{name}-feedback", window_rows=1, max_age_s=None
        )
    return setting


def set_logging(
    session: Session, access: ProjectAccess, name: str, enabled: bool, dataset: str | None, window_rows: int,
    max_age_s: float | None = None,
) -> RequestLogSetting:  # fmt: skip
    """Turn logging on or off; a window is stored at ``window_rows`` labelled rows, or (``max_age_s``)
    once its oldest labelled row has waited that long, as the user who set it."""
    setting = get_logging(session, access.project, name)
    if dataset is not None:
        check_name("dataset", dataset)
        setting.dataset = dataset
    setting.enabled, setting.window_rows, setting.max_age_s = enabled, window_rows, max_age_s
    setting.updated_at, setting.set_by = utcnow(), access.user
    session.add(setting)
    audit.record(
        session, access.user, "deployment.request_log", f"deployment:{name}", project_id=access.project.id,
        detail={"enabled": enabled, "dataset": setting.dataset, "window_rows": window_rows, "max_age_s": max_age_s},
    )  # fmt: skip
    session.commit()
    return setting


def summary(session: Session, setting: RequestLogSetting) -> dict[str, Any]:
    def count(*where: Any) -> int:
        query = select(func.count()).select_from(LoggedRequest)
        return session.scalar(query.where(LoggedRequest.deployment_id == setting.deployment_id, *where)) or 0

    return {
        "deployment": setting.deployment.name, "enabled": setting.enabled, "dataset": setting.dataset,
        "window_rows": setting.window_rows, "max_age_s": setting.max_age_s,
        "logged": count(), "labelled": count(LoggedRequest.label.is_not(None)),
        "pending": count(LoggedRequest.label.is_not(None), LoggedRequest.appended_version.is_(None)),
    }  # fmt: skip


# ------------------------------------------------------------------------------- logging (serving)


class RequestLog:
    """The serving process's side: logs the rows of deployments that opted in. The settings are
    re-read at most every `SETTINGS_CACHE_S`; the database is only touched in worker threads."""

    def __init__(self, sessions: Any, keyring: Keyring) -> None:
        self.sessions, self.keyring = sessions, keyring
        self._enabled: dict[tuple[int, str], int] = {}  # (project id, deployment name) -> deployment id
        self._read_at = -math.inf
        self._lock = threading.Lock()

    def _refresh(self) -> None:
        with self.sessions() as session:
            rows = session.execute(
                select(Deployment.project_id, Deployment.name, Deployment.id)
                .join(RequestLogSetting, RequestLogSetting.deployment_id == Deployment.id)
                .where(RequestLogSetting.enabled.is_(True))
            ).all()
        with self._lock:
            self._enabled = {(p, n): i for p, n, i in rows}
            self._read_at = time.monotonic()

    def may_log(self) -> bool:
        """False while no deployment logs (settings read within `SETTINGS_CACHE_S`): nothing to call."""
        return bool(self._enabled) or time.monotonic() - self._read_at > SETTINGS_CACHE_S

    async def _logging(self, project_id: int, deployment: str) -> int | None:
        """The deployment's id if it opted in (the settings read again when older than `SETTINGS_CACHE_S`)."""
        if time.monotonic() - self._read_at > SETTINGS_CACHE_S:
            try:
                await anyio.to_thread.run_sync(self._refresh)
            except SQLAlchemyError:  # the answer still goes out; the settings are read again next time
                log.exception("the request-log settings could not be read; keeping the last ones")
        return self._enabled.get((project_id, deployment))

    async def log(self, project_id: int, deployment: str, served: Any, records: list[Any],
                  predictions: list[dict[str, Any]]) -> str | None:  # fmt: skip
        """Log one answered /predict request of ``served`` (a `modelworks.serve.modelset.Deployment`)
        if its deployment opted in; returns its request id, or None."""
        deployment_id = await self._logging(project_id, deployment)
        if deployment_id is None:
            return None
        return await self._logged(deployment_id, deployment, served, records, predictions, "predict")

    async def log_tensors(self, project_id: int, deployment: str, served: Any, inputs: dict[str, Any],
                          outputs: dict[str, Any]) -> str | None:  # fmt: skip
        """Log one answered /infer request if its deployment opted in: its rows rebuilt from the input
        tensors (`modelworks.streams.tensors`), its predictions read from the outputs. None (not
        logged) for a model whose inputs cannot be undone (text, images)."""
        deployment_id = await self._logging(project_id, deployment)
        if deployment_id is None:
            return None
        model = served.model

        def rebuilt() -> tuple[list[dict[str, Any]] | None, list[dict[str, Any]]]:
            records = tensors.records(model, inputs)
            return records, model.decode(outputs, len(records)) if records is not None else []

        records, predictions = await anyio.to_thread.run_sync(rebuilt)
        if records is None:
            return None
        return await self._logged(deployment_id, deployment, served, records, predictions, "infer")

    async def _logged(self, deployment_id: int, deployment: str, served: Any, records: list[Any],
                      predictions: list[dict[str, Any]], route: str) -> str | None:  # fmt: skip
        model = served.model
        facts = {"target": model.config.data.target, "task": model.schema.task,
                 "classes": model.schema.class_names, "route": route}  # fmt: skip
        request_id = uuid.uuid4().hex
        rows = [
            LoggedRequest(
                deployment_id=deployment_id, request_id=request_id, row=i, model_version=str(served.version),
                sealed=_sealed({"input": record, "prediction": p.get("prediction"), **facts}, self.keyring),
            )
            for i, (record, p) in enumerate(zip(records, predictions, strict=True))
        ]  # fmt: skip
        try:
            await anyio.to_thread.run_sync(self._write, rows)
        except SQLAlchemyError:  # the answer goes out without a Request-Id: the caller sees it was not logged
            log.exception("deployment %s: the request could not be logged", deployment)
            return None
        return request_id

    def _write(self, rows: list[LoggedRequest]) -> None:
        with self.sessions() as session:
            session.add_all(rows)
            session.commit()


# ------------------------------------------------------------------------------- feedback


def check_label(label: Any, logged: dict[str, Any], where: str) -> None:
    """``label`` must be what the model predicts: one of its classes (of the same JSON type as its
    predictions), or a finite number for regression; else an `Unprocessable` saying what it needs."""
    if logged["task"] == "regression":
        if isinstance(label, bool) or not isinstance(label, (int, float)) or not math.isfinite(label):
            got = json.dumps(label)
            raise Unprocessable(f"{where}: the label must be a number (the model predicts values); got {got}")
        return
    prediction, classes = logged["prediction"], [str(c) for c in logged["classes"] or []]
    kind = "text" if isinstance(prediction, str) else "a number"
    same_type = isinstance(label, str) if isinstance(prediction, str) else (
        isinstance(label, (int, float)) and not isinstance(label, bool)
    )  # fmt: skip
    if not same_type:
        raise Unprocessable(
            f"{where}: the label must be {kind}, like the model's classes ({', '.join(classes)}); "
            f"got {json.dumps(label)}"
        )
    if classes and str(label) not in classes:
        known = ", ".join(classes)
        raise Unprocessable(f"{where}: the label {json.dumps(label)} is not one of the model's classes: {known}")


def attach_label(
    session: Session, store: DataStore, access: ProjectAccess, name: str, request_id: str, row: int, label: Any
) -> dict[str, Any]:
    """Give logged row ``row`` of ``request_id`` its label; store the deployment's window once it is full."""
    setting = get_logging(session, access.project, name)
    where = f"request {request_id} row {row}"
    logged = session.scalar(
        select(LoggedRequest).where(
            LoggedRequest.deployment_id == setting.deployment_id,
            LoggedRequest.request_id == request_id,
            LoggedRequest.row == row,
        )
    )
    if logged is None:
        # 422, not 404: the deployment exists; what the body names does not
        raise Unprocessable(f"deployment {name!r} logged no {where}: give the Request-Id of a /predict answer of it")
    if logged.label is not None:
        raise Conflict(f"{where} has its label already")
    opened = _opened(logged.sealed, store.keyring)
    check_label(label, opened, where)
    schema = append.latest_schema(session, access.project, setting.dataset)
    check_records([_joined(opened, label, schema)], schema)  # refused now, not later
    logged.label, logged.labelled_at = _sealed(label, store.keyring), utcnow()
    audit.record(
        session, access.user, "deployment.feedback", f"deployment:{name}", project_id=access.project.id,
        detail={"request_id": request_id, "row": row},
    )  # fmt: skip
    session.flush()
    # The label commits with the window it fills (a window that cannot be stored keeps it out too), or alone.
    version = _store_window(session, store, access, setting, setting.window_rows)
    if version is None:
        session.commit()
    return {"request_id": request_id, "row": row, "dataset": setting.dataset,
            "pending": summary(session, setting)["pending"], "version": version}  # fmt: skip


def flush(session: Session, store: DataStore, access: ProjectAccess, name: str) -> dict[str, Any]:
    """Store deployment ``name``'s labelled rows now, however few (a window closed by time)."""
    setting = get_logging(session, access.project, name)
    version = _store_window(session, store, access, setting, 1)
    return {**summary(session, setting), "version": version}


def _joined(opened: dict[str, Any], label: Any, schema: Schema | None) -> dict[str, Any]:
    """A logged row with its label in the target column: a row rebuilt from /infer tensors has its
    text cells read by the dataset's column types."""
    row = opened["input"] if opened.get("route") != "infer" else tensors.cells_typed(opened["input"], schema)
    return {**row, opened["target"]: label}


def close_aged(session: Session, store: DataStore, now: datetime) -> list[tuple[str, int]]:
    """Store the labelled rows of every deployment with a ``max_age_s`` whose oldest waiting row was
    labelled at least that long before ``now`` (the caller's clock); each as the user who set its
    logging, with that user's current access. Returns (deployment, version) for each stored; one
    that cannot be stored now is logged and left for the next call."""
    oldest = (
        select(LoggedRequest.deployment_id, func.min(LoggedRequest.labelled_at))
        .where(LoggedRequest.label.is_not(None), LoggedRequest.appended_version.is_(None))
        .group_by(LoggedRequest.deployment_id)
    )
    waiting = dict(session.execute(oldest).all())
    stored = []
    for setting in session.scalars(select(RequestLogSetting).where(RequestLogSetting.max_age_s.is_not(None))):
        since = waiting.get(setting.deployment_id)
        if since is None or (now - since).total_seconds() < setting.max_age_s:
            continue
        name = setting.deployment.name
        try:
            user = setting.set_by
            if user is None:
                raise Unprocessable("the user who set its request log no longer exists")
            project = session.get(Project, setting.deployment.project_id)
            access = authorize_project(session, user, project.name, Role.editor)
            version = _store_window(session, store, access, setting, 1)
        except (UserError, SQLAlchemyError) as e:
            session.rollback()
            log.warning("deployment %s: its feedback window of %s s could not be stored: %s", name,
                        setting.max_age_s, e)  # fmt: skip
            continue
        if version is not None:
            stored.append((name, version))
    return stored


def _store_window(
    session: Session, store: DataStore, access: ProjectAccess, setting: RequestLogSetting, at_least: int
) -> int | None:
    """Append the labelled rows waiting for a version, once there are ``at_least`` of them."""
    pending = list(
        session.scalars(
            select(LoggedRequest)
            .where(
                LoggedRequest.deployment_id == setting.deployment_id,
                LoggedRequest.label.is_not(None),
                LoggedRequest.appended_version.is_(None),
            )
            .order_by(LoggedRequest.labelled_at, LoggedRequest.id)
        )
    )
    if not pending or len(pending) < at_least:
        return None
    schema = append.latest_schema(session, access.project, setting.dataset)
    records = []
    for logged in pending:
        opened = _opened(logged.sealed, store.keyring)
        records.append(_joined(opened, _opened(logged.label, store.keyring), schema))

    def mark(version: DatasetVersion) -> None:
        for logged in pending:
            logged.appended_version = version.version

    first, last = pending[0], pending[-1]
    window = append.Window(
        origin="feedback", source_key=f"deployment:{setting.deployment.name}",
        first_offset=f"{first.request_id}:{first.row}", last_offset=f"{last.request_id}:{last.row}",
        detail={"model_versions": sorted({p.model_version for p in pending})},
    )  # fmt: skip
    row = append.append_rows(session, store, access, setting.dataset, records, window, also=mark)
    return row.version
