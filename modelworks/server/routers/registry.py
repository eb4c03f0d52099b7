"""Runs and the model registry: viewers read and download; editors register versions and move
aliases. Versions have no update route: once registered they never change."""

from __future__ import annotations

from collections.abc import Iterator
from typing import IO, Annotated, Any

from fastapi import APIRouter, Path, Query, Request, Response

from modelworks.platform import registry, runs
from modelworks.platform.db.models import ModelAlias, ModelVersion, RegisteredModel, Run
from modelworks.platform.ids import DbId
from modelworks.platform.storage import Storage
from modelworks.server.dependencies import DbSession, Editor, Paging, PathName, Viewer
from modelworks.server.downloads import Download
from modelworks.server.redact import redact
from modelworks.server.schemas import (
    AliasOut,
    AliasSet,
    ModelDetail,
    ModelOut,
    ModelVersionOut,
    Page,
    RunDetail,
    RunOut,
    VersionCreate,
)

router = APIRouter(prefix="/projects/{project}", tags=["runs and models"])

Id = Annotated[DbId, Path()]
ArtifactPath = Annotated[str, Path(description="a file's path inside the run folder, e.g. model.safetensors")]


def storage_of(request: Request) -> Storage:
    return request.app.state.datastore.storage


def run_out(run: Run) -> RunOut:
    return RunOut.model_validate(run)


def version_out(v: ModelVersion, *, artifacts: bool = False) -> ModelVersionOut:
    return ModelVersionOut(
        model=v.model.name,
        version=v.version,
        run_id=v.run_id,
        created_by=v.created_by.name if v.created_by else None,
        created_at=v.created_at,
        artifacts=v.artifacts if artifacts else None,
    )


def alias_out(a: ModelAlias, model: str) -> AliasOut:
    return AliasOut(
        model=model,
        alias=a.name,
        version=a.version.version,
        updated_by=a.updated_by.name if a.updated_by else None,
        updated_at=a.updated_at,
    )


def model_out(m: RegisteredModel) -> ModelOut:
    return ModelOut(name=m.name, created_by=m.created_by.name if m.created_by else None, created_at=m.created_at)


def send(entry: dict[str, Any], spool: IO[bytes]) -> Download:
    """A verified spool as a download, with its SHA-256 for the client to check again."""

    def chunks() -> Iterator[bytes]:
        with spool:
            while chunk := spool.read(runs.CHUNK):
                yield chunk

    return Download(chunks(), size=entry["size"], sha256=entry["sha256"], filename=entry["path"].rsplit("/", 1)[-1])


# --- runs


@router.get("/runs")
def list_runs(
    access: Viewer,
    session: DbSession,
    paging: Paging,
    job: Annotated[DbId | None, Query(description="only the run of this job")] = None,
) -> Page[RunOut]:
    """The project's recorded runs, newest first."""
    return Page[RunOut].of(runs.list_runs(session, access.project, job, paging.limit, paging.offset), run_out)


@router.get("/runs/{run_id}")
def get_run(
    run_id: Id,
    access: Viewer,
    session: DbSession,
    request: Request,
    points: Annotated[
        int,
        Query(
            ge=2,
            le=10_000,
            description="at most this many points per metric in history (evenly thinned, the last always kept)",
        ),
    ] = runs.HISTORY_POINTS,
) -> RunDetail:
    """A run's parameters, metrics over time, artifacts and lineage. Every point of a long
    history is at ``/jobs/{job_id}/metrics``, paged."""
    run = runs.get_run(session, access.project, run_id)
    history, totals = runs.metric_history(session, run, points)
    detail = {
        **run_out(run).model_dump(),
        "config": run.config,
        "artifacts": run.artifacts,
        "history": history,
        "history_points": totals,
    }
    return RunDetail.model_validate(redact(detail, request.app.state.settings))  # the resolved config names folders


@router.get("/runs/{run_id}/artifacts/{path:path}", response_class=Download)
def download_run_artifact(
    run_id: Id, path: ArtifactPath, access: Viewer, session: DbSession, request: Request
) -> Download:
    """A file of the run, sent only if it still matches the SHA-256 recorded with the run."""
    return send(*runs.open_artifact(storage_of(request), runs.get_run(session, access.project, run_id), path))


# --- models


@router.get("/models")
def list_models(access: Viewer, session: DbSession, paging: Paging) -> Page[ModelOut]:
    return Page[ModelOut].of(registry.list_models(session, access.project, paging.limit, paging.offset), model_out)


@router.get("/models/{name}")
def get_model(name: PathName, access: Viewer, session: DbSession) -> ModelDetail:
    model, versions, aliases = registry.get_model(session, access.project, name)
    return ModelDetail(
        **model_out(model).model_dump(),
        versions=[version_out(v) for v in versions],
        aliases=[alias_out(a, name) for a in aliases],
    )


@router.post("/models/{name}/versions", status_code=201)
def register_version(
    name: PathName, body: VersionCreate, access: Editor, session: DbSession, request: Request
) -> ModelVersionOut:
    """Freeze a run as the next version of ``name`` (the model is created on first use)."""
    run = runs.get_run(session, access.project, body.run_id)
    return version_out(registry.register_version(session, storage_of(request), access, name, run), artifacts=True)


@router.get("/models/{name}/versions/{version}")
def get_version(name: PathName, version: Id, access: Viewer, session: DbSession) -> ModelVersionOut:
    return version_out(registry.get_version(session, access.project, name, version), artifacts=True)


@router.get("/models/{name}/versions/{version}/artifacts/{path:path}", response_class=Download)
def download_version_artifact(
    name: PathName, version: Id, path: ArtifactPath, access: Viewer, session: DbSession, request: Request
) -> Download:
    """A registered file, checked against its frozen SHA-256 (and, for weights, the safetensors format)."""
    return send(
        *registry.open_version_artifact(
            storage_of(request), registry.get_version(session, access.project, name, version), path
        )
    )


# --- aliases


@router.get("/models/{name}/aliases/{alias}")
def get_alias(name: PathName, alias: PathName, access: Viewer, session: DbSession) -> AliasOut:
    """The version an alias points at."""
    return alias_out(registry.get_alias(session, access.project, name, alias), name)


@router.put("/models/{name}/aliases/{alias}")
def set_alias(name: PathName, alias: PathName, body: AliasSet, access: Editor, session: DbSession) -> AliasOut:
    """Point an alias at a version, creating it or moving it."""
    return alias_out(registry.set_alias(session, access, name, alias, body.version), name)


@router.delete("/models/{name}/aliases/{alias}", status_code=204)
def delete_alias(name: PathName, alias: PathName, access: Editor, session: DbSession) -> Response:
    registry.delete_alias(session, access, name, alias)
    return Response(status_code=204)
