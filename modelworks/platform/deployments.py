"""Deployments: a registered model served under a name, for a project's inference traffic.

A deployment follows an alias (``production``: moving the alias rolls it to the new version,
moving it back rolls it back) or stays on one version. An optional canary sends
``canary_percent`` of the requests to a second version. The serving process
(`modelworks.serve.platform`) reads `plan` and makes what it serves match it; nothing here
loads a model.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from modelworks.errors import UserError
from modelworks.platform import audit, registry
from modelworks.platform.access import ProjectAccess
from modelworks.platform.db.lookup import find_named
from modelworks.platform.db.models import ModelAlias, ModelVersion, Project, utcnow
from modelworks.platform.db.paging import DEFAULT_LIMIT, Page, paginate
from modelworks.platform.db.serving import Deployment
from modelworks.platform.errors import Conflict
from modelworks.platform.names import check_name
from modelworks.serve.precision import check_precision

RUNTIMES = ("torch", "onnx")
UNSET = object()  # "leave as it is", for `update_deployment`


@dataclass(frozen=True)
class Target:
    """What one deployment should serve now: the versions and the share (percent) of each."""

    project_id: int
    project: str
    deployment: str
    model: str
    runtime: str
    precision: str
    max_batch: int
    max_delay_ms: float
    weights: dict[int, float]  # version -> percent of requests, summing to 100
    versions: dict[int, ModelVersion]

    @property
    def served_name(self) -> str:
        """The model name on the wire: ``<project>.<deployment>`` (deployment names are per project)."""
        return served_name(self.project, self.deployment)


def served_name(project: str, deployment: str) -> str:
    return f"{project}.{deployment}"


def _check(runtime: str, max_batch: int, max_delay_ms: float, canary_percent: float, precision: str = "fp32") -> None:
    if runtime not in RUNTIMES:
        raise UserError(f"the runtime of a deployment must be one of {', '.join(RUNTIMES)}; got {runtime!r}")
    check_precision(runtime, precision)
    if not 1 <= max_batch <= 4096:
        raise UserError(f"max_batch must be 1 to 4096; got {max_batch}")
    if not 0 <= max_delay_ms <= 1000:
        raise UserError(f"max_delay_ms must be 0 to 1000; got {max_delay_ms}")
    if not 0 <= canary_percent <= 100:
        raise UserError(f"canary_percent must be 0 to 100; got {canary_percent}")


def create_deployment(
    session: Session,
    access: ProjectAccess,
    name: str,
    model: str,
    *,
    alias: str | None = None,
    version: int | None = None,
    canary_version: int | None = None,
    canary_percent: float = 0.0,
    runtime: str = "torch",
    precision: str = "fp32",
    max_batch: int = 32,
    max_delay_ms: float = 5.0,
) -> Deployment:
    """Deploy ``model``'s ``alias`` or ``version`` (exactly one) as ``name``."""
    check_name("deployment", name)
    if (alias is None) == (version is None):
        raise UserError("a deployment follows either an alias or a version: give exactly one")
    _check(runtime, max_batch, max_delay_ms, canary_percent, precision)
    found, _, _ = registry.get_model(session, access.project, model)
    if alias is not None:
        registry.get_alias(session, access.project, model, alias)
    else:
        registry.get_version(session, access.project, model, version)
    if canary_version is not None:
        registry.get_version(session, access.project, model, canary_version)
    row = Deployment(
        project_id=access.project.id,
        name=name,
        model_id=found.id,
        alias=alias,
        version=version,
        canary_version=canary_version,
        canary_percent=canary_percent,
        runtime=runtime,
        precision=precision,
        max_batch=max_batch,
        max_delay_ms=max_delay_ms,
        created_by_id=access.user.id,
    )
    session.add(row)
    audit.record(
        session,
        access.user,
        "deployment.create",
        f"deployment:{name}",
        project_id=access.project.id,
        detail={
            "model": model,
            "alias": alias,
            "version": version,
            "canary_version": canary_version,
            "canary_percent": canary_percent,
        },
    )
    try:
        session.commit()
    except IntegrityError as e:
        session.rollback()
        raise Conflict(f"project {access.project.name!r} already has a deployment named {name!r}") from e
    session.refresh(row)
    return row


def get_deployment(session: Session, project: Project, name: str) -> Deployment:
    return find_named(session, Deployment, "deployment", project, name)


def list_deployments(
    session: Session, project: Project, limit: int = DEFAULT_LIMIT, offset: int = 0
) -> Page[Deployment]:
    query = select(Deployment).where(Deployment.project_id == project.id).order_by(Deployment.name)
    return paginate(session, query, limit, offset)


def update_deployment(
    session: Session,
    access: ProjectAccess,
    name: str,
    *,
    canary_version: object = UNSET,
    canary_percent: object = UNSET,
    alias: object = UNSET,
    version: object = UNSET,
) -> Deployment:
    """Change a deployment's canary, or what it follows (an alias or a version)."""
    row = get_deployment(session, access.project, name)
    model = row.model.name
    if alias is not UNSET or version is not UNSET:
        new_alias = None if alias is UNSET else alias
        new_version = None if version is UNSET else version
        if (new_alias is None) == (new_version is None):
            raise UserError("a deployment follows either an alias or a version: give exactly one")
        if new_alias is not None:
            registry.get_alias(session, access.project, model, new_alias)
        else:
            registry.get_version(session, access.project, model, new_version)
        row.alias, row.version = new_alias, new_version
    if canary_version is not UNSET:
        if canary_version is not None:
            registry.get_version(session, access.project, model, canary_version)
        row.canary_version = canary_version
    if canary_percent is not UNSET:
        canary_percent = 0.0 if canary_percent is None else canary_percent  # cleared: no canary traffic
        _check(row.runtime, row.max_batch, row.max_delay_ms, canary_percent)
        row.canary_percent = canary_percent
    row.updated_at = utcnow()
    audit.record(
        session,
        access.user,
        "deployment.update",
        f"deployment:{name}",
        project_id=access.project.id,
        detail={
            "alias": row.alias,
            "version": row.version,
            "canary_version": row.canary_version,
            "canary_percent": row.canary_percent,
        },
    )
    session.commit()
    return row


def delete_deployment(session: Session, access: ProjectAccess, name: str) -> None:
    row = get_deployment(session, access.project, name)
    session.delete(row)
    audit.record(session, access.user, "deployment.delete", f"deployment:{name}", project_id=access.project.id)
    session.commit()


def current_version(session: Session, row: Deployment) -> int | None:
    """The version the deployment follows now (None: its alias was deleted)."""
    if row.version is not None:
        return row.version
    alias = session.scalar(select(ModelAlias).where(ModelAlias.model_id == row.model_id, ModelAlias.name == row.alias))
    return alias.version.version if alias is not None else None


def plan(session: Session) -> list[Target]:
    """What every deployment of every project should serve now: read by the serving process."""
    targets = []
    rows = session.execute(select(Deployment, Project.name).join(Project, Project.id == Deployment.project_id)).all()
    for row, project in rows:
        primary = current_version(session, row)
        if primary is None:
            continue
        weights = {primary: 100.0}
        if row.canary_version is not None and row.canary_version != primary and row.canary_percent > 0:
            weights = {primary: 100.0 - row.canary_percent, row.canary_version: row.canary_percent}
        versions = {
            v.version: v
            for v in session.scalars(
                select(ModelVersion).where(
                    ModelVersion.model_id == row.model_id, ModelVersion.version.in_(list(weights))
                )
            )
        }
        if set(versions) != set(weights):
            continue
        targets.append(
            Target(
                project_id=row.project_id,
                project=project,
                deployment=row.name,
                model=row.model.name,
                runtime=row.runtime,
                precision=row.precision,
                max_batch=row.max_batch,
                max_delay_ms=row.max_delay_ms,
                weights={v: w for v, w in weights.items() if w > 0},
                versions=versions,
            )
        )
    return targets
