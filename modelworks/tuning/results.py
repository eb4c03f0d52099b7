"""What a search leaves behind: ``trials.csv``, ``best.yaml``, the tune report and a `TuneResult`.

`finish` reads everything it needs from the study folder (the experiment and ``study.log``), not
from the session that ran the trials. With ``tune.keep: best`` (the default) the weights of every trial
run but the best are deleted here; their configs, metrics and reports stay. ``keep: all`` keeps
them.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import optuna
import pandas as pd
import yaml
from optuna.trial import TrialState

from modelworks.engine.train import train
from modelworks.store import run as store
from modelworks.store.atomic import atomic_write_text
from modelworks.store.files import BEST_YAML, TRIALS_CSV
from modelworks.tuning.folder import STUDY_NAME, Search
from modelworks.tuning.report import write_tune_report


@dataclass
class TuneResult:
    """What a search found. `trials` has one row per trial (as in ``trials.csv``)."""

    study_dir: Path
    metric: str
    direction: str
    best_value: float | None
    best_params: dict[str, Any]
    best_trial: int | None
    best_run: Path | None
    best_config: Path | None
    report: Path
    trials: pd.DataFrame
    notes: list[str] = field(default_factory=list)


def finish(study_dir: str | Path) -> TuneResult:
    """Write trials.csv, best.yaml and the tune report; keep the best run's weights (see `keep`)."""
    search = Search.load(Path(study_dir))
    study = optuna.load_study(study_name=STUDY_NAME, storage=search.storage())
    trials = study.get_trials(deepcopy=False)
    complete = [t for t in trials if t.state == TrialState.COMPLETE]
    notes: list[str] = []
    if search.tune.cv_folds:
        notes.append(
            f"each trial is scored by {search.tune.cv_folds}-fold cross-validation (the mean of the folds' held-out "
            f"{search.metric.removeprefix('val_')}), over all rows of the data; pruning is disabled with cv_folds"
        )
    best = (max if search.direction == "max" else min)(complete, key=lambda t: t.value) if complete else None
    best_params = search.space.decode_params(best.params) if best else {}
    best_run, best_config = None, None
    if best is not None:
        best_config = Path(study_dir) / BEST_YAML
        header = (
            f"# best of {len(trials)} trials in {study_dir}: trial {best.number}, {search.metric} = {best.value:.6g}\n"
        )
        atomic_write_text(
            best_config,
            header + yaml.safe_dump(search.best_experiment(best_params), sort_keys=False, allow_unicode=True),
        )
        best_run = _best_run(search, study, best, best_params, notes)
    if search.tune.keep == "best":
        _delete_other_weights(search, trials, best_run)
        if len(trials) > 1:
            notes.append(
                "tune.keep is best: only the best run keeps its weights; the other trial runs keep "
                "their config, metrics and report"
            )
    frame = trials_frame(search, trials)
    atomic_write_text(Path(study_dir) / TRIALS_CSV, frame.to_csv(index=False))
    importance = _importance(study, complete, notes)
    summary = {
        "title": f"{search.name}: hyperparameter search",
        "study_dir": str(study_dir),
        "metric": search.metric,
        "direction": search.direction,
        "settings": {**search.tune.model_dump(mode="json", exclude={"space"}), "epochs": search.epochs},
        "space": {k: v.model_dump(mode="json") for k, v in search.space.params.items()},
        "counts": {s.name: sum(t.state == s for t in trials) for s in TrialState if any(t.state == s for t in trials)},
        "best": None
        if best is None
        else {
            "trial": best.number,
            "value": best.value,
            "params": best_params,
            "run": _relative(best_run, study_dir),
            "config": _relative(best_config, study_dir),
        },
        "importance": importance,
        "notes": notes,
    }
    if best is None:
        notes.append("no trial completed: there is no best config yet")
    curves = {t.number: (t.state.name, dict(t.intermediate_values)) for t in trials}
    _, html_path = write_tune_report(Path(study_dir), summary, frame, curves)
    return TuneResult(
        study_dir=Path(study_dir),
        metric=search.metric,
        direction=search.direction,
        best_value=best.value if best else None,
        best_params=best_params,
        best_trial=best.number if best else None,
        best_run=best_run,
        best_config=best_config,
        report=html_path,
        trials=frame,
        notes=notes,
    )


def _relative(path: Path | None, study_dir: str | Path) -> str | None:
    """A path inside the study folder as seen from it (the report stays valid if the folder moves)."""
    if path is None:
        return None
    try:
        return str(Path(path).resolve().relative_to(Path(study_dir).resolve()))
    except ValueError:
        return str(path)


def trials_frame(search: Search, trials: list[optuna.trial.FrozenTrial]) -> pd.DataFrame:
    rows = []
    for t in trials:
        row = {
            "number": t.number,
            "state": t.state.name,
            search.metric: t.value if t.state == TrialState.COMPLETE else None,
            "epochs": t.last_step,
            "duration_s": round(t.duration.total_seconds(), 3) if t.duration else None,
        }
        row.update({path: t.params.get(path) for path in search.space.params})
        row["run"] = t.user_attrs.get("run")
        rows.append(row)
    columns = ["number", "state", search.metric, "epochs", "duration_s", *search.space.params, "run"]
    return pd.DataFrame(rows, columns=columns)


def _best_run(
    search: Search, study: optuna.Study, best: optuna.trial.FrozenTrial, params: dict[str, Any], notes: list[str]
) -> Path | None:
    """The best trial's run; with cv_folds, a run trained once on the usual split with its params."""
    if not search.tune.cv_folds:
        return search.study_dir / best.user_attrs["run"] if "run" in best.user_attrs else None
    done = study.user_attrs.get("best_run")
    if done and done["trial"] == best.number and (search.study_dir / done["run"]).exists():
        return search.study_dir / done["run"]
    raw = {
        **search.best_experiment(params),
        "name": f"{search.name}-best",
        "runs_dir": str(search.trials_dir.resolve()),
    }
    run = train(raw, base_dir=search.study_dir, progress=False)
    study.set_user_attr(
        "best_run", {"trial": best.number, "run": str(run.path.relative_to(search.study_dir.resolve()))}
    )
    notes.append(f"the best run was trained once on the experiment's own split with trial {best.number}'s params")
    return run.path


def _delete_other_weights(search: Search, trials: list[optuna.trial.FrozenTrial], best_run: Path | None) -> None:
    keep = best_run.resolve() if best_run else None
    for t in trials:
        if "run" not in t.user_attrs:
            continue
        folder = (search.study_dir / t.user_attrs["run"]).resolve()
        if folder == keep:
            continue
        for f in (folder / store.WEIGHTS, folder / store.CHECKPOINT):
            f.unlink(missing_ok=True)


def _importance(study: optuna.Study, complete: list, notes: list[str]) -> dict[str, float] | None:
    if len(complete) < 2:
        notes.append(f"parameter importance needs at least 2 completed trials; this study has {len(complete)}")
        return None
    with warnings.catch_warnings(record=True) as caught:  # e.g. too few distinct values: said in the report
        warnings.simplefilter("always")
        try:
            importance = {k: float(v) for k, v in optuna.importance.get_param_importances(study).items()}
        except (RuntimeError, ValueError) as e:
            notes.append(f"parameter importance could not be computed: {e}")
            return None
    notes.extend(f"parameter importance: {w.message}" for w in caught)
    return importance
