"""continue: a registered model continued on new data, gated, and promoted only if it passes.

One attempt, in order:

1. **test** — the current version (``MODEL@ALIAS|VERSION``, its files fetched from the registry into
   ``parent/``) predicts the new window (the data's rows from ``window_start``) before any training:
   its prequential metric, the window's errors fed to the drift detector after the policy's kept
   stream. With ``train_on: drift`` and no drift, the job ends here (no run).
2. **train** — a candidate from the parent's config on the new data, into ``runs/run/``; with the
   engine's warm start (``train.init_from``) it starts from the parent's weights and preprocessing.
3. **register** — the candidate's run is recorded (lineage: the new dataset version and the parent
   version) and registered as the model's next version, without the alias.
4. **gate** — candidate and current version predict the SAME rows: the new window's holdout (the
   candidate's evaluation split) and the old holdout (the parent's own evaluation split of its
   data); `modelworks.evaluate.gate.decide` judges them.
5. **promote** — the alias moves to the candidate only if the gate passed and the alias still points
   at the parent. The window (numbers, decision, outcome) is stored and audited.
"""

from __future__ import annotations

import copy
import io
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import yaml
from sqlalchemy import select
from sqlalchemy.orm import Session

from modelworks.api import load_run, train
from modelworks.config.schema import DataConfig, TrainConfig
from modelworks.continual.overlap import row_hashes, without
from modelworks.data.sources import read_source
from modelworks.errors import UserError
from modelworks.evaluate import drift
from modelworks.evaluate.gate import GateDecision, Holdout, correct, decide, naive_baselines
from modelworks.job_kinds import ContinueJob
from modelworks.jobs.attempt import RUN_NAME, Attempt, platform_experiment, resolve_source, working_data
from modelworks.jobs.kinds.train import MetricsToDb
from modelworks.jobs.run_job import publish
from modelworks.platform import continual, registry
from modelworks.platform.access import ProjectAccess
from modelworks.platform.db.continual import ContinualPolicy, ContinualWindow
from modelworks.platform.db.models import Job, ModelVersion, Project, Run, User
from modelworks.platform.runs import fetch_run, job_run
from modelworks.platform.storage import Storage
from modelworks.store.files import CONFIG
from modelworks.store.jsonfile import json_safe, numbers


@dataclass
class Parent:
    """The version being continued, as this attempt found it."""

    name: str
    version: int
    run_id: int | None
    source: str | None  # the data it was trained on (its run's lineage), for the old holdout
    folder: Path
    history: list[float] = field(default_factory=list)  # the policy's kept error stream
    excluded: list[str] = field(default_factory=list)  # rows of `source` it did not train on (their hashes)


@dataclass
class Tested:
    """The current version on the new window, before any training."""

    rows: int
    metric: str
    value: float | None
    sliding: float | None
    drift_rows: list[int]
    errors: list[float]  # the stream to keep for the next window
    labels: pd.Index  # the window's rows, by their label in the data as read


def run_continue(attempt: Attempt, job: Job, project: Project, folder: Path) -> dict[str, Any]:
    cfg = ContinueJob.model_validate(job.config)
    name, ref, alias = cfg.target()
    storage = Storage(attempt.settings.artifacts)
    parent, row, owner = _parent(attempt, project, cfg, name, ref, folder)
    registry.materialize_version(storage, row, parent.folder)
    new_source = resolve_source(attempt, project, cfg.data, folder)
    old_source = resolve_source(attempt, project, parent.source, folder) if parent.source else None
    if old_source is not None and parent.excluded:  # the parent's data as it trained on it, for its own split
        old_source = _filtered(parent, old_source, parent.excluded, "parent-data", folder)[0]
    tested = _test(parent, new_source, old_source, cfg, folder)
    print(f"the current version {name}@{parent.version} on the new window: {tested.metric} {tested.value} "
          f"({tested.rows} rows); drift at rows {tested.drift_rows[:5] or 'none'}", flush=True)  # fmt: skip
    window = {"policy_id": cfg.policy, "errors": tested.errors, "actor": owner, "model": name, "alias": alias,
              "parent_version": parent.version, "dataset": cfg.data, "window_start": cfg.window_start,
              "rows": tested.rows, "metric": tested.metric, "prequential": tested.value, "sliding": tested.sliding,
              "drift": bool(tested.drift_rows), "drift_rows": tested.drift_rows[:100]}  # fmt: skip
    summary = {"model": name, "parent_version": parent.version, "alias": alias, "prequential": tested.value,
               "sliding": tested.sliding, "drift": bool(tested.drift_rows)}  # fmt: skip
    if cfg.train_on == "drift" and not tested.drift_rows:
        _record(attempt, project, job, dict(window, outcome="tested", decision=None))
        print("no drift detected: nothing to train", flush=True)
        return {**summary, "trained": False, "promoted": False, "metrics": numbers({"prequential": tested.value})}

    train_source, window_rows, excluded = _without_old_holdout(parent, new_source, old_source, tested.labels, folder)
    if excluded:
        print(f"{len(excluded)} rows of the data are in {name}@{parent.version}'s holdout: "
              "the candidate does not train on them", flush=True)  # fmt: skip
    with attempt.sessions() as session:
        recorded = job_run(session, job.id)  # an earlier attempt trained and recorded the candidate
    if recorded is not None:
        run_dir = fetch_run(storage, recorded, folder / "sources" / "candidate")
    else:
        run_dir = _train_candidate(attempt, job, project, parent, cfg, train_source, folder)
    with attempt.sessions() as session:
        lineage = {"parent_model": name, "parent_version": parent.version, "parent_run": parent.run_id,
                   **({"excluded_rows": excluded} if excluded else {})}  # fmt: skip
        run = publish(session, attempt.settings, job, run_dir, folder, source=cfg.data, parent=lineage)
        attempt.update(session)  # the fence: commits the run while the claim holds
        version = session.scalar(select(ModelVersion).where(ModelVersion.run_id == run.id))  # a retried attempt's
        version = version or registry.register_version(session, storage, _access(session, project, owner), name, run)
        candidate = version.version
    print(f"registered the candidate as {name} version {candidate} (without {alias!r})", flush=True)

    decision = _gate(parent, run_dir, new_source, old_source, window_rows, cfg, folder)
    for reason in decision.reasons:
        print(f"gate: {reason}", flush=True)
    promoted = decision.passed and _promote(attempt, project, owner, name, alias, parent.version, candidate)
    outcome = "promoted" if promoted else "rejected"
    kept = json_safe(decision.model_dump(mode="json"))
    _record(attempt, project, job, dict(window, outcome=outcome, candidate_version=candidate, decision=kept))
    print(f"{name} version {candidate}: {outcome}" + (f"; {alias} -> {candidate}" if promoted else ""), flush=True)
    return {
        **summary, "run": str(run_dir), "trained": True, "candidate_version": candidate, "promoted": promoted,
        "decision": kept, "metrics": numbers({"prequential": tested.value, "new_gain": decision.new.gain,
                                              **({"old_gain": decision.old.gain} if decision.old else {})}),
    }  # fmt: skip


# ------------------------------------------------------------------------------------ the parent


def _parent(
    attempt: Attempt, project: Project, cfg: ContinueJob, name: str, ref: str, folder: Path
) -> tuple[Parent, ModelVersion, User | None]:
    """The version ``MODEL@ref`` names, its run's data lineage, the policy's kept error stream, and
    the user the job acts for (who submitted it, or created the policy that did)."""
    with attempt.sessions() as session:
        earlier = job_run(session, attempt.job_id)  # a retried attempt continues the version the first one did
        ref = str((earlier.lineage or {}).get("parent_version", ref)) if earlier is not None else ref
        row = continual.resolve_model(session, project, name, ref)
        run = session.get(Run, row.run_id) if row.run_id is not None else None
        history: list[float] = []
        if cfg.policy is not None:
            policy = session.get(ContinualPolicy, cfg.policy)
            if policy is None or policy.project_id != project.id:
                raise UserError(f"config: policy: no policy {cfg.policy} in project {project.name!r}")
            history = list(policy.errors or [])
        job = session.get(Job, attempt.job_id)
        owner = session.get(User, job.created_by_id) if job.created_by_id is not None else None
        lineage = (run.lineage or {}) if run is not None else {}
        parent = Parent(name, row.version, row.run_id, lineage.get("source"), folder / "parent", history,
                        list(lineage.get("excluded_rows") or []))  # fmt: skip
    shutil.rmtree(parent.folder, ignore_errors=True)  # what an earlier attempt fetched
    return parent, row, owner


def _test(parent: Parent, new_source: str, old_source: str | None, cfg: ContinueJob, folder: Path) -> Tested:
    """Test-then-train: the current version's errors on the new window, in row order. The detector
    reads the policy's kept stream first; with none yet (a first window), the version's errors on
    its own holdout stand for the stream it was trusted on."""
    root = working_data(folder)
    current = load_run(parent.folder, device="cpu", source=new_source, base_dir=folder, data_root=root)
    frame = read_source(current.config.data.model_copy(update={"limit": None}), folder).frame
    window = frame.iloc[cfg.window_start :]
    classification = current.schema.task != "regression"
    metric = "accuracy" if classification else "mae"
    history = parent.history
    if not history and old_source is not None:
        before = load_run(parent.folder, device="cpu", source=old_source, base_dir=folder, data_root=root)
        history = _errors(before, before.frames()[before.config.evaluate.split])
    if not len(window):
        return Tested(0, metric, None, None, [], list(parent.history), window.index)
    errors = _errors(current, window)
    value, sliding = drift.prequential(errors, parent.history, classification)
    flagged = drift.drift_rows(history, errors, cfg.detector)
    return Tested(len(errors), metric, value, sliding, flagged, drift.kept(parent.history, errors), window.index)


def _errors(run: Any, frame: pd.DataFrame) -> list[float]:
    """Per row of ``frame`` (those it can predict): 0/1 for a wrong label, or the absolute error."""
    predicted = run.predict(frame)["prediction"]
    keep = predicted.notna().to_numpy()
    y, p = frame[run.config.data.target].to_numpy()[keep], predicted.to_numpy()[keep]
    if run.schema.task != "regression":
        return (~correct(y, p)).astype(float).tolist()
    return np.abs(p.astype(float) - y.astype(float)).tolist()


# ----------------------------------------------------------------------- the parent's holdout rows

TABLE_FILES = {".csv": "csv", ".jsonl": "jsonl", ".parquet": "parquet"}  # what a filtered copy is written as


def _without_old_holdout(
    parent: Parent, new_source: str, old_source: str | None, window: pd.Index, folder: Path
) -> tuple[str, pd.Index, list[str]]:
    """The data the candidate trains on: ``new_source`` without the rows of the parent's holdout
    (its evaluation and test splits of the data it trained on), which a cumulative version holds
    again and the candidate's own split could train on; the window's rows in it; the removed rows'
    hashes (kept in the lineage, so that the candidate's own split can be made again)."""
    if old_source is None:
        return new_source, window, []
    before = load_run(parent.folder, device="cpu", source=old_source, base_dir=folder, data_root=working_data(folder))
    if before.schema.image:
        return new_source, window, []  # an image folder is not rewritten; its rows are files
    frames = before.frames()
    splits = [s for s in dict.fromkeys([before.config.evaluate.split, "test"]) if len(frames.get(s, ()))]
    if not splits:
        return new_source, window, []
    data = before.config.data
    held = row_hashes(pd.concat([frames[s] for s in splits]), [f.name for f in data.features] + [data.target])
    return _filtered(parent, new_source, held, "candidate-data", folder, window)


def _filtered(
    parent: Parent, source: str, held_out: list[str], name: str, folder: Path, window: pd.Index | None = None
) -> tuple[str, pd.Index | None, list[str]]:
    """``source`` without the rows whose content hashes ``held_out`` lists (`overlap.without`): a
    copy in the working data in the same format, or ``source`` itself when none is there; the rows
    of ``window`` in it; the hashes of the rows removed."""
    config = yaml.safe_load((parent.folder / CONFIG).read_text(encoding="utf-8"))["data"]
    data = DataConfig.model_validate({**config, "source": source, "limit": None, "root": str(working_data(folder))})
    fmt = TABLE_FILES.get(Path(source).suffix.lower())
    if fmt is None or data.encoding == "auto":
        return source, window, []  # a built-in, or a file written back only in its own form
    frame = read_source(data, folder).frame
    hashes = row_hashes(frame, [f.name for f in data.features or []] + [data.target])
    keep = without(hashes, held_out)
    if keep.all():
        return source, window, []
    kept = frame[keep]
    if fmt == "parquet":
        content = _parquet(kept)
    elif fmt == "csv":
        sep = "," if data.csv_delimiter == "auto" else data.csv_delimiter
        content = kept.to_csv(index=False, sep=sep).encode(data.encoding)
    else:
        content = kept.to_json(orient="records", lines=True, force_ascii=False).encode(data.encoding)
    path = working_data(folder) / f"{name}{Path(source).suffix}"
    path.write_bytes(content)
    if window is not None:
        window = pd.RangeIndex(len(kept))[frame.index.isin(window)[keep]]
    return str(path), window, [h for h, k in zip(hashes, keep, strict=True) if not k]


def _parquet(frame: pd.DataFrame) -> bytes:
    out = io.BytesIO()
    frame.to_parquet(out, index=False)
    return out.getvalue()


# ------------------------------------------------------------------------------------ the candidate


def _train_candidate(
    attempt: Attempt, job: Job, project: Project, parent: Parent, cfg: ContinueJob, source: str, folder: Path
) -> Path:
    """Train the candidate: the parent's config on the new data (``source``: `cfg.data` as this
    attempt holds it, without the parent's holdout), its train section changed by ``cfg.train``,
    warm-started from the parent where the engine supports ``train.init_from``."""
    config = yaml.safe_load((parent.folder / CONFIG).read_text(encoding="utf-8"))
    if config.get("compression"):
        raise UserError(
            f"model {parent.name} version {parent.version} is a compressed run; continue the version it was made from"
        )
    config.pop("tune", None)
    config["data"] = {k: v for k, v in config["data"].items() if k != "root"} | {"source": source}
    config["train"] = _merged(config.get("train") or {}, cfg.train)
    if "init_from" in TrainConfig.model_fields:  # the engine's warm start (issue 13, engine part)
        config["train"]["init_from"] = str(parent.folder)  # never the parent's own parent, nor a path a user named
    config = platform_experiment(attempt, project, config, folder)
    runs = folder / "runs"
    shutil.rmtree(runs, ignore_errors=True)  # each attempt trains its candidate from the start
    config.update(runs_dir=str(runs), name=RUN_NAME)
    attempt.clear_metrics()
    run = train(config, callbacks=[MetricsToDb(attempt, runs, None)], progress=False, base_dir=folder)
    return run.path


def _merged(base: dict[str, Any], changes: dict[str, Any]) -> dict[str, Any]:
    out = copy.deepcopy(base)
    for key, value in changes.items():
        out[key] = _merged(out[key], value) if isinstance(value, dict) and isinstance(out.get(key), dict) else value
    return out


# ---------------------------------------------------------------------------------- gate, promote


def _gate(
    parent: Parent, candidate_dir: Path, new_source: str, old_source: str | None, window: pd.Index, cfg: ContinueJob,
    folder: Path,
) -> GateDecision:  # fmt: skip
    """Candidate and current version on the same rows of the new window's holdout (the candidate's
    evaluation split, only the window's rows of it: a cumulative version's older rows are not new;
    all of it if the window has none there) and of the old holdout."""
    root = working_data(folder)
    candidate = load_run(candidate_dir, device="cpu", base_dir=folder)
    current = load_run(parent.folder, device="cpu", source=new_source, base_dir=folder, data_root=root)
    frames = candidate.frames()
    split = candidate.config.evaluate.split
    holdout = frames[split]
    in_window = holdout[holdout.index.isin(window)]
    new = _holdout(candidate, current, in_window if len(in_window) else holdout)
    old = None
    if old_source is not None:
        before = load_run(parent.folder, device="cpu", source=old_source, base_dir=folder, data_root=root)
        old = _holdout(candidate, before, before.frames()[before.config.evaluate.split])
    task = candidate.schema.task
    baselines = naive_baselines(task, frames["train"][candidate.config.data.target].to_numpy(), len(new.y_true))
    return decide(task, cfg.gate, new, old, baselines)


def _holdout(candidate: Any, current: Any, frame: pd.DataFrame) -> Holdout:
    """Both models' predictions on ``frame``'s rows, keeping the rows both could predict."""
    a, b = candidate.predict(frame)["prediction"], current.predict(frame)["prediction"]
    keep = (a.notna() & b.notna()).to_numpy()
    y = frame[candidate.config.data.target].to_numpy()[keep]
    return Holdout(y, a.to_numpy()[keep], b.to_numpy()[keep])


def _access(session: Session, project: Project, owner: User | None) -> ProjectAccess:
    """The job's access in ``session``: the project and the user it acts for, as rows of that session."""
    user = session.get(User, owner.id) if owner is not None else None
    return ProjectAccess(project=session.get(Project, project.id), user=user, role=None)


def _promote(
    attempt: Attempt, project: Project, owner: User | None, name: str, alias: str, parent: int, candidate: int
) -> bool:
    """Move ``alias`` to the candidate if it still points at the parent (or nowhere yet); a retried
    attempt finds it on the candidate already. An alias someone moved meanwhile is left alone."""
    with attempt.sessions() as session:
        attempt.update(session)  # the fence: only while this attempt holds the job
        access = _access(session, project, owner)
        try:
            at = registry.get_alias(session, access.project, name, alias).version.version
        except UserError:
            at = None
        if at == candidate:
            return True
        if at not in (None, parent):
            print(f"gate passed, but {alias!r} moved to version {at} meanwhile: left alone", flush=True)
            return False
        registry.set_alias(session, access, name, alias, candidate)
    return True


def _record(attempt: Attempt, project: Project, job: Job, window: dict[str, Any]) -> None:
    """Store the window once (a retried attempt that finds it keeps it), fenced by the claim."""
    with attempt.sessions() as session:
        if session.scalar(select(ContinualWindow.id).where(ContinualWindow.job_id == job.id)) is None:
            continual.record_window(session, project.id, job_id=job.id, **window)
        attempt.update(session)
