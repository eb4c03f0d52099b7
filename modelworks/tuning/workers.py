"""Running a session's trials: in this process, or in ``tune.parallel`` spawned worker processes.

Callbacks: each finished trial of the study is handed once, as a `TrialRecord`, to the
callbacks given to `tune`, in the process that called it. A resumed study first hands over the
trials its earlier sessions finished (``resumed=True``), then each trial as it finishes: in this
process from Optuna's own callback, or, with parallel workers, as this process sees them in the
study's storage. An exception from a callback stops the search and propagates.

Counting: the search runs until ``tune.trials`` trials have finished COMPLETE or PRUNED, those of
earlier sessions included. A FAILED trial (a NaN metric, or one cut off by an interruption) does
not count. Each session hands out exactly the trials still missing, one at a time, to its
workers, so P parallel workers never start more than asked for. Resuming assumes that no other
search is running on the same study: trials still marked RUNNING are taken as interrupted.
"""

from __future__ import annotations

import contextlib
import math
import multiprocessing
import os
import queue
import time
import traceback
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import optuna
from optuna.trial import TrialState

from modelworks.errors import UserError
from modelworks.tuning.folder import STUDY_NAME, Search
from modelworks.tuning.trial import Objective

COUNTED = (TrialState.COMPLETE, TrialState.PRUNED)
FINISHED = (TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL)


@dataclass(frozen=True)
class TrialRecord:
    """A finished trial, as `tune`'s callbacks receive it.

    ``state`` is COMPLETE, PRUNED or FAIL (only the first two count towards ``tune.trials``);
    ``value`` is the tuned ``metric`` of a COMPLETE trial, else None; ``params`` are config values
    (list choices decoded); ``epochs`` is the last epoch reported; ``run`` the trial's run folder."""

    number: int
    state: str
    metric: str
    value: float | None
    params: dict[str, Any]
    epochs: int | None
    run: Path | None
    resumed: bool = False  # finished in an earlier session of a resumed study

    @property
    def counted(self) -> bool:
        return self.state in (s.name for s in COUNTED)


TrialCallback = Callable[[TrialRecord], None]


class Reporter:
    """Hands each finished trial of the study to the callbacks, once."""

    def __init__(self, search: Search, callbacks: Sequence[TrialCallback]) -> None:
        self.search = search
        self.callbacks = list(callbacks)
        self.seen: set[int] = set()

    def report(self, study: optuna.Study, resumed: bool = False) -> None:
        if not self.callbacks:
            return
        for t in study.get_trials(deepcopy=False, states=FINISHED):
            if t.number in self.seen:
                continue
            self.seen.add(t.number)
            record = self.record(t, resumed)
            for callback in self.callbacks:
                callback(record)

    def record(self, t: optuna.trial.FrozenTrial, resumed: bool) -> TrialRecord:
        run = t.user_attrs.get("run")
        return TrialRecord(
            number=t.number,
            state=t.state.name,
            metric=self.search.metric,
            value=t.value if t.state == TrialState.COMPLETE else None,
            params=self.search.space.decode_params(t.params),
            epochs=t.last_step,
            run=self.search.study_dir / run if run else None,
            resumed=resumed,
        )


class Tickets:
    """The trials this session may still start, shared by its worker processes."""

    def __init__(self, context: Any, count: int) -> None:
        self.count = context.Value("i", count)

    def take(self) -> bool:
        with self.count.get_lock():
            if self.count.value <= 0:
                return False
            self.count.value -= 1
            return True


def run_trials(search: Search, progress: bool, callbacks: Sequence[TrialCallback] = ()) -> None:
    """Start the trials still missing: in this process, or in `parallel` spawned worker processes."""
    study = optuna.load_study(study_name=STUDY_NAME, storage=search.storage())
    for t in study.get_trials(deepcopy=False, states=(TrialState.RUNNING, TrialState.WAITING)):
        study.tell(t.number, state=TrialState.FAIL)  # left behind by an interrupted session
    reporter = Reporter(search, callbacks)
    reporter.report(study, resumed=True)
    missing = search.tune.trials - len(study.get_trials(deepcopy=False, states=COUNTED))
    if missing <= 0:
        return
    deadline = time.time() + search.tune.timeout_s if search.tune.timeout_s else None
    seed = search.tune.seed + len(study.trials)  # a resumed session does not replay the first one's draws
    workers = min(search.tune.parallel, missing)
    context = multiprocessing.get_context("spawn")
    tickets = Tickets(context, missing)
    if workers == 1:
        work(str(search.study_dir), tickets, deadline, seed, None, progress, reporter)
        return
    threads = max(1, (os.cpu_count() or 1) // workers)
    errors = context.Queue()
    procs = [
        context.Process(
            target=_worker,
            args=(str(search.study_dir), tickets, deadline, seed + 10007 * k, threads, progress, errors),
            name=f"modelworks-tune-{k}",
        )
        for k in range(workers)
    ]
    for p in procs:
        p.start()
    try:
        _wait(procs, errors, lambda: reporter.report(study))
        reporter.report(study)
    finally:
        for p in procs:
            if p.is_alive():
                p.terminate()
            p.join()


def _wait(procs: list, errors: Any, meanwhile: Callable[[], None]) -> None:
    """Wait for every worker, calling `meanwhile` every poll; the first worker that fails stops
    the others and its error is raised here."""
    while any(p.is_alive() for p in procs):
        failed = [p for p in procs if p.exitcode not in (None, 0)]
        if failed:
            break
        meanwhile()
        time.sleep(0.2)
    failed = [p for p in procs if p.exitcode not in (None, 0)]
    if not failed:
        return
    try:
        kind, message = errors.get(timeout=5)
    except queue.Empty:
        kind, message = "error", f"{failed[0].name} exited with status {failed[0].exitcode}"
    if kind == "user":
        raise UserError(message)
    raise RuntimeError(f"a tune worker failed:\n{message}")


def _worker(
    study_dir: str, tickets: Tickets, deadline: float | None, seed: int, threads: int, progress: bool, errors: Any
) -> None:
    """A spawned worker process: its share of the trials, errors sent back to the parent."""
    try:
        work(study_dir, tickets, deadline, seed, threads, progress)
    except UserError as e:
        errors.put(("user", str(e)))
        raise SystemExit(2) from None
    except KeyboardInterrupt:
        raise SystemExit(130) from None
    except Exception:  # anything else: its traceback goes to the parent, which raises it there
        errors.put(("error", traceback.format_exc()))
        raise SystemExit(1) from None


def work(
    study_dir: str,
    tickets: Tickets,
    deadline: float | None,
    seed: int,
    threads: int | None,
    progress: bool,
    reporter: Reporter | None = None,
) -> None:
    """Run trials on the study in `study_dir` while tickets last and the deadline allows; the
    `reporter` (in the process that called `tune` only) hands each finished trial to its callbacks."""
    if threads:
        import torch

        torch.set_num_threads(threads)
    search = Search.load(Path(study_dir))
    study = optuna.load_study(
        study_name=STUDY_NAME, storage=search.storage(), sampler=search.sampler(seed), pruner=search.pruner()
    )

    def next_trial(study: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:
        if progress:
            _announce(search, trial)
        if reporter is not None:
            reporter.report(study)
        if not tickets.take():
            study.stop()

    timeout = None if deadline is None else deadline - time.time()
    if (timeout is not None and timeout <= 0) or not tickets.take():
        return
    with optuna_quiet():
        study.optimize(Objective(search), timeout=timeout, callbacks=[next_trial])


@contextlib.contextmanager
def optuna_quiet():
    """Optuna's per-trial INFO lines off (the CLI prints its own); warnings stay."""
    level = optuna.logging.get_verbosity()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    try:
        yield
    finally:
        optuna.logging.set_verbosity(level)


def _announce(search: Search, t: optuna.trial.FrozenTrial) -> None:
    import sys

    value = (
        t.value if t.state == TrialState.COMPLETE else (t.intermediate_values.get(t.last_step) if t.last_step else None)
    )
    shown = f"{search.metric} {value:.4f}" if value is not None and math.isfinite(value) else "no value"
    epochs = f", {t.last_step} epoch{'s' if t.last_step != 1 else ''}" if t.last_step else ""
    seconds = t.duration.total_seconds() if t.duration else 0.0
    print(f"trial {t.number}: {t.state.name.lower()}, {shown} ({seconds:.1f} s{epochs})", file=sys.stderr, flush=True)
