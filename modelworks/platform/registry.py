"""The model registry: named models, their immutable numbered versions, and movable aliases.

Registering a run copies every file of its manifest into the artifact store at
``<project-id>/models/<model-id>/<version>/<path>``, checking each against the SHA-256 the run
recorded, so a version holds exactly what the run produced and nothing done to the run folder
afterwards reaches it. Every ``*.safetensors`` file is checked to really be one (header parsed
as JSON, tensor offsets inside the file) before the version exists: a pickle renamed to
``model.safetensors`` is refused, and since nothing here (or in `load_weights`) unpickles,
no code in it ever runs. Versions have no update path; aliases move, each move audited.
"""

from __future__ import annotations

import json
import shutil
import struct
from pathlib import Path
from typing import IO, Any

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from modelworks.platform import audit
from modelworks.platform.access import ProjectAccess
from modelworks.platform.db.lookup import find_named
from modelworks.platform.db.models import ModelAlias, ModelVersion, Project, RegisteredModel, Run, utcnow
from modelworks.platform.db.paging import DEFAULT_LIMIT, Page, paginate
from modelworks.platform.errors import Conflict, NotFound, Unprocessable
from modelworks.platform.names import check_name
from modelworks.platform.runs import CHUNK, find_entry, open_artifact, read_verified
from modelworks.platform.storage import Storage

MAX_HEADER = 100 << 20  # safetensors' own limit on the JSON header
DTYPE_BYTES = {
    "BOOL": 1,
    "U8": 1,
    "I8": 1,
    "F8_E5M2": 1,
    "F8_E4M3": 1,
    "I16": 2,
    "U16": 2,
    "F16": 2,
    "BF16": 2,
    "I32": 4,
    "U32": 4,
    "F32": 4,
    "I64": 8,
    "U64": 8,
    "F64": 8,
}


class NotSafetensors(Unprocessable):
    """A file named ``*.safetensors`` that is not one (422)."""


# ----------------------------------------------------------------------------- safetensors check


def check_safetensors(f: IO[bytes], size: int, what: str) -> None:
    """Refuse ``f`` unless it is a well-formed safetensors file: an 8-byte header length, a JSON
    header of tensors whose dtypes, shapes and offsets fit the file exactly. Reads only the
    header; nothing is deserialized but JSON."""
    refuse = f"{what} is not a safetensors file ({{}}); weights are only ever loaded from safetensors, never unpickled"
    head = f.read(8)
    if len(head) < 8:
        raise NotSafetensors(refuse.format("too short"))
    (n,) = struct.unpack("<Q", head)
    if n < 2 or n > MAX_HEADER or 8 + n > size:
        raise NotSafetensors(refuse.format("no valid header length; a pickle, for one, starts differently"))
    try:
        header = json.loads(f.read(n).decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as e:
        raise NotSafetensors(refuse.format("its header is not JSON")) from e
    if not isinstance(header, dict):
        raise NotSafetensors(refuse.format("its header is not a JSON object"))
    end = 0
    for name, info in header.items():
        if name == "__metadata__":
            continue
        try:
            dtype, shape, (start, stop) = info["dtype"], info["shape"], info["data_offsets"]
            count = 1
            for dim in shape:
                count *= int(dim)
            ok = dtype in DTYPE_BYTES and 0 <= start <= stop and stop - start == count * DTYPE_BYTES[dtype]
        except (TypeError, KeyError, ValueError):
            ok = False
        if not ok:
            raise NotSafetensors(refuse.format(f"tensor {name!r} is malformed"))
        end = max(end, stop)
    if 8 + n + end != size:
        raise NotSafetensors(refuse.format("its tensors do not fill the file"))


# ------------------------------------------------------------------------------------ models


def _find_model(session: Session, project: Project, name: str) -> RegisteredModel:
    return find_named(session, RegisteredModel, "model", project, name)


def list_models(
    session: Session, project: Project, limit: int = DEFAULT_LIMIT, offset: int = 0
) -> Page[RegisteredModel]:
    return paginate(
        session,
        select(RegisteredModel).where(RegisteredModel.project_id == project.id).order_by(RegisteredModel.name),
        limit,
        offset,
    )


def get_model(
    session: Session, project: Project, name: str
) -> tuple[RegisteredModel, list[ModelVersion], list[ModelAlias]]:
    model = _find_model(session, project, name)
    versions = list(
        session.scalars(select(ModelVersion).where(ModelVersion.model_id == model.id).order_by(ModelVersion.version))
    )
    aliases = list(session.scalars(select(ModelAlias).where(ModelAlias.model_id == model.id).order_by(ModelAlias.name)))
    return model, versions, aliases


def get_version(session: Session, project: Project, name: str, version: int) -> ModelVersion:
    model = _find_model(session, project, name)
    row = session.scalar(select(ModelVersion).where(ModelVersion.model_id == model.id, ModelVersion.version == version))
    if row is None:
        raise NotFound(f"model {name!r} has no version {version}")
    return row


def register_version(session: Session, storage: Storage, access: ProjectAccess, name: str, run: Run) -> ModelVersion:
    """Freeze ``run`` as the next version of model ``name`` (created on first use)."""
    check_name("model", name)
    project = access.project
    model = session.scalar(
        select(RegisteredModel).where(RegisteredModel.project_id == project.id, RegisteredModel.name == name)
    )
    if model is None:
        model = RegisteredModel(project_id=project.id, name=name, created_by=access.user)
        session.add(model)
        session.flush()
    version = (session.scalar(select(func.max(ModelVersion.version)).where(ModelVersion.model_id == model.id)) or 0) + 1
    prefix = f"{project.id}/models/{model.id}/{version}"
    storage.remove(prefix)  # leftovers of a registration that failed half-way
    try:
        for entry in run.artifacts:
            _, spool = open_artifact(storage, run, entry["path"])  # checked against the run's manifest
            with spool:
                if entry["path"].endswith(".safetensors"):
                    check_safetensors(spool, entry["size"], f"{entry['path']!r} of run {run.id}")
                    spool.seek(0)
                with storage.open(f"{prefix}/{entry['path']}", "wb") as out:
                    shutil.copyfileobj(spool, out, CHUNK)
    except BaseException:
        session.rollback()
        storage.remove(prefix)
        raise
    row = ModelVersion(
        model=model,
        version=version,
        run_id=run.id,
        storage_prefix=prefix,
        artifacts=[dict(e) for e in run.artifacts],
        created_by=access.user,
    )
    session.add(row)
    audit.record(
        session,
        access.user,
        "model.version.create",
        f"model:{name}@{version}",
        project_id=project.id,
        detail={"run": run.id, "version": version},
    )
    try:
        session.commit()
    except IntegrityError as e:
        session.rollback()
        storage.remove(prefix)
        raise Conflict(f"another version of model {name!r} was registered at the same moment; retry") from e
    return row


def open_version_artifact(storage: Storage, row: ModelVersion, path: str) -> tuple[dict[str, Any], IO[bytes]]:
    """A registered file, checked against the SHA-256 frozen at registration, as (entry, spool)."""
    entry = find_entry(row.artifacts, path, f"model {row.model.name!r} version {row.version}")
    what = f"{path!r} of model {row.model.name!r} version {row.version}"
    spool = read_verified(storage, f"{row.storage_prefix}/{entry['path']}", entry, what)
    if path.endswith(".safetensors"):
        check_safetensors(spool, entry["size"], what)
        spool.seek(0)
    return entry, spool


def materialize_version(storage: Storage, row: ModelVersion, dest: Path) -> Path:
    """Write a version's files into the new folder ``dest``, each checked (SHA-256, and
    safetensors for weights), ready for `modelworks.api.load_run`; returns ``dest``."""
    dest.mkdir(parents=True)
    try:
        for entry in row.artifacts:
            _, spool = open_version_artifact(storage, row, entry["path"])
            with spool:
                target = dest / entry["path"]
                target.parent.mkdir(parents=True, exist_ok=True)
                with open(target, "xb") as out:
                    shutil.copyfileobj(spool, out, CHUNK)
    except BaseException:
        shutil.rmtree(dest, ignore_errors=True)
        raise
    return dest


# ----------------------------------------------------------------------------------- aliases


def get_alias(session: Session, project: Project, name: str, alias: str) -> ModelAlias:
    model = _find_model(session, project, name)
    check_name("alias", alias)
    row = session.scalar(select(ModelAlias).where(ModelAlias.model_id == model.id, ModelAlias.name == alias))
    if row is None:
        raise NotFound(f"model {name!r} has no alias {alias!r}")
    return row


def set_alias(session: Session, access: ProjectAccess, name: str, alias: str, version: int) -> ModelAlias:
    """Point ``alias`` at ``version`` (creating or moving it); audited with the move."""
    check_name("alias", alias)
    target = get_version(session, access.project, name, version)
    row = session.scalar(select(ModelAlias).where(ModelAlias.model_id == target.model_id, ModelAlias.name == alias))
    before = row.version.version if row is not None else None
    if row is None:
        row = ModelAlias(model_id=target.model_id, name=alias, version_id=target.id, updated_by=access.user)
        session.add(row)
    else:
        row.version_id, row.updated_by, row.updated_at = target.id, access.user, utcnow()
    audit.record(
        session,
        access.user,
        "model.alias.set",
        f"model:{name}#{alias}",
        project_id=access.project.id,
        detail={"alias": alias, "version": version, "from": before},
    )
    try:
        session.commit()
    except IntegrityError as e:
        session.rollback()
        raise Conflict(f"alias {alias!r} of model {name!r} was changed at the same moment; retry") from e
    session.refresh(row)
    return row


def delete_alias(session: Session, access: ProjectAccess, name: str, alias: str) -> None:
    row = get_alias(session, access.project, name, alias)
    version = row.version.version
    session.delete(row)
    audit.record(
        session,
        access.user,
        "model.alias.delete",
        f"model:{name}#{alias}",
        project_id=access.project.id,
        detail={"alias": alias, "version": version},
    )
    session.commit()


def check_run_weights(path: Path) -> None:
    """`check_safetensors` for a local file (e.g. before `load_weights`)."""
    with open(path, "rb") as f:
        check_safetensors(f, path.stat().st_size, str(path))
