"""Platform API latency at 1k runs x 10k metric points, and metric ingestion from a real training job.

Part 1 (API). A fresh platform in a temporary folder (SQLite; PostgreSQL too with ``--postgres``
where Debian's server binaries exist), migrated and bootstrapped with `prepare`, is seeded by bulk
SQLAlchemy inserts of the platform's own models: ``--runs`` succeeded train `Job` rows, one `Run`
per job (a resolved digits config, a 9-file artifact manifest, final metrics) and ``--points``
`JobMetric` rows spread evenly over those jobs. The shipped server (``python -m modelworks up
--workers 0``) is then started in its own process on 127.0.0.1, so that client and server do not
share a GIL, and httpx times each request after a warm-up:

- GET  /api/v1/projects/{p}/runs                       first page (limit 50), and a deep page (offset 950)
- GET  /api/v1/projects/{p}/runs/{id}                  one run with its metric history
- GET  /api/v1/projects/{p}/jobs/{id}/metrics          the same points through the jobs route

There is no HTTP route for logging metrics: a job's child process writes them straight into the
database through `modelworks.jobs.run_job.Attempt.add_metrics` (called by the `MetricsToDb`
callback's flush), so that function is what is timed, with batches of 1 and of 50 points, while
the server is up on the same database. Last, one extra job gets a 10,000-point history and its
run is read, to show how the detail route scales with a long history.

Part 2 (ingestion). A real `modelworks.train` of ``examples/fashion_mnist_cnn.yaml`` on a
``--rows`` subset (CPU), run
``--repeats`` times in each of two variants in this one process, order alternated (AB BA AB ...):
``plain`` (no callback) and ``db`` (the job runner's `MetricsToDb` writing to an SQLite platform
database through a claimed job's `Attempt`). Reports the points written, points/s of training,
the ingestion capacity (points per second spent inside ``add_metrics``) and the overhead on
training wall time (median db / median plain - 1; the goal is <= 2%).

Prints a Markdown table and writes bench/results/platform_api.json.

    python bench/platform_api.py                      # SQLite, ~4 minutes on 2 CPU cores
    python bench/platform_api.py --postgres           # also PostgreSQL, if initdb/pg_ctl exist
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Callable

import httpx
import yaml
from sqlalchemy import insert, select

from modelworks.platform.bootstrap import prepare
from modelworks.platform.db import make_engine, session_factory
from modelworks.platform.db.models import Job, JobMetric, Project, Run, User
from modelworks.platform.projects import create_project
from modelworks.platform.settings import Settings

ROOT = Path(__file__).resolve().parent.parent
EXPERIMENT = ROOT / "examples" / "digits_cnn.yaml"  # the template of the seeded runs' config
TRAIN_EXPERIMENT = ROOT / "examples" / "fashion_mnist_cnn.yaml"
PROJECT = "bench"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def percentiles(samples_s: list[float]) -> dict[str, float]:
    ms = sorted(x * 1000 for x in samples_s)
    q = statistics.quantiles(ms, n=100, method="inclusive")
    return {"p50_ms": statistics.median(ms), "p99_ms": q[98], "mean_ms": statistics.fmean(ms), "n": len(ms)}


def timed(fn: Callable[[], Any], n: int, warmup: int) -> dict[str, float]:
    for _ in range(warmup):
        fn()
    samples = []
    for _ in range(n):
        t = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - t)
    return percentiles(samples)


# ------------------------------------------------------------------------------ PostgreSQL


def pg_bindir() -> Path | None:
    dirs = sorted(Path("/usr/lib/postgresql").glob("*/bin"), key=lambda p: int(p.parent.name) if p.parent.name.isdigit() else 0, reverse=True)
    return next((d for d in dirs if (d / "initdb").exists() and (d / "pg_ctl").exists()), None)


class PgCluster:
    """A throwaway cluster, as in tests/server/conftest.py (run as ``postgres`` when we are root)."""

    def __init__(self, bindir: Path) -> None:
        self.bindir, self.port = bindir, free_port()
        self.root = Path(tempfile.mkdtemp(prefix="mw-pg-"))
        if os.geteuid() == 0:
            shutil.chown(self.root, "postgres", "postgres")

    def _run(self, *args: str) -> None:
        cmd = [str(self.bindir / args[0]), *args[1:]]
        if os.geteuid() == 0:
            cmd = ["runuser", "-u", "postgres", "--", *cmd]
        subprocess.run(cmd, check=True, capture_output=True, text=True, timeout=120)

    def start(self) -> str:
        # The same settings as the test cluster: durability off, so the figures are a lower bound.
        self._run("initdb", "-D", str(self.root / "data"), "-U", "postgres", "-A", "trust", "--no-sync", "-E", "UTF8", "--no-locale")
        options = f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off -c full_page_writes=off"
        self._run("pg_ctl", "-D", str(self.root / "data"), "-l", str(self.root / "server.log"), "-w", "-t", "60", "-o", options, "start")
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def stop(self) -> None:
        try:
            self._run("pg_ctl", "-D", str(self.root / "data"), "-m", "immediate", "-w", "stop")
        finally:
            shutil.rmtree(self.root, ignore_errors=True)


# ------------------------------------------------------------------------------ seeding


def run_template() -> tuple[dict[str, Any], list[dict[str, Any]], dict[str, float]]:
    """A resolved digits config (every default filled in), a run folder's manifest and final metrics."""
    from modelworks.config.schema import ExperimentConfig

    config = ExperimentConfig.model_validate(yaml.safe_load(EXPERIMENT.read_text())).model_dump(mode="json")
    files = ["config.yaml", "environment.json", "history.jsonl", "metrics.json", "model.safetensors",
             "preprocess.json", "report.json", "report.md", "checkpoint.safetensors"]
    artifacts = [{"path": f, "size": 1000 + 37 * i, "sha256": f"{i:064x}"} for i, f in enumerate(files)]
    metrics = {"accuracy": 0.97, "macro_f1": 0.969, "loss": 0.11, "val_accuracy": 0.975}
    return config, artifacts, metrics


def seed(settings: Settings, runs: int, points: int) -> dict[str, Any]:
    """A project with ``runs`` succeeded train jobs, each with a Run and points // runs JobMetric rows."""
    engine = make_engine(settings.database_url)
    sessions = session_factory(engine)
    config, artifacts, metrics = run_template()
    t0 = time.perf_counter()
    with sessions() as session:
        admin = session.scalar(select(User))
        project = create_project(session, admin, PROJECT).project
        start = datetime(2025, 1, 1, tzinfo=timezone.utc)
        session.execute(insert(Job), [
            {"project_id": project.id, "kind": "train", "config": config, "state": "succeeded", "attempts": 1,
             "created_by_id": admin.id, "created_at": start + timedelta(minutes=i), "run_dir": f"/runs/{i}"}
            for i in range(runs)])
        job_ids = list(session.scalars(select(Job.id).where(Job.project_id == project.id).order_by(Job.id)))
        session.execute(insert(Run), [
            {"project_id": project.id, "job_id": j, "run_dir": f"/runs/{i}", "config": config,
             "lineage": {"source": "builtin:digits"}, "code_version": {"git_commit": "0" * 40, "modelworks": "0.1.0"},
             "metrics": metrics, "artifacts": artifacts, "created_at": start + timedelta(minutes=i)}
            for i, j in enumerate(job_ids)])
        per_run = points // runs
        names = ["loss", "train_loss", "val_loss", "val_accuracy", "lr"]
        session.execute(insert(JobMetric), [
            {"job_id": j, "step": k * 20, "epoch": k // len(names), "name": names[k % len(names)], "value": 1.0 / (k + 1)}
            for j in job_ids for k in range(per_run)])
        session.commit()
        run_ids = list(session.scalars(select(Run.id).where(Run.project_id == project.id).order_by(Run.id)))
    engine.dispose()
    return {"project_id": project.id, "job_ids": job_ids, "run_ids": run_ids, "points_per_run": per_run,
            "seed_s": time.perf_counter() - t0}


def add_job(settings: Settings, project_id: int, *, with_run: bool) -> tuple[int, int | None, str]:
    """A running job claimed with a fresh token (what a worker hands its child), and optionally a run."""
    engine = make_engine(settings.database_url)
    token = uuid.uuid4().hex
    with session_factory(engine)() as session:
        job = Job(project_id=project_id, kind="train", config={}, state="running", attempts=1, claim_token=token)
        session.add(job)
        session.flush()
        run_id = None
        if with_run:
            config, artifacts, metrics = run_template()
            run = Run(project_id=project_id, job_id=job.id, run_dir="/runs/heavy", config=config, lineage={"source": "builtin:digits"},
                      code_version={}, metrics=metrics, artifacts=artifacts)
            session.add(run)
            session.flush()
            run_id = run.id
        session.commit()
        job_id = job.id
    engine.dispose()
    return job_id, run_id, token


# ------------------------------------------------------------------------------ the server


class Server:
    """``python -m modelworks up --workers 0`` in its own process, on a free loopback port."""

    def __init__(self, settings: Settings) -> None:
        self.port = free_port()
        env = {**os.environ, "MODELWORKS_DATABASE_URL": settings.database_url}
        cmd = [sys.executable, "-m", "modelworks", "up", "--workers", "0", "--host", "127.0.0.1", "--port", str(self.port), "--data-dir", str(settings.home)]
        self.proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        self.url = f"http://127.0.0.1:{self.port}"
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"{self.url}/health", timeout=1).status_code < 500:
                    return
            except httpx.TransportError:
                pass
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"the server did not start: {self.proc.stderr.read().decode() if self.proc.stderr else ''}")
            time.sleep(0.1)

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


# ------------------------------------------------------------------------------ part 1: API


def bench_api(backend: str, database_url: str, args: argparse.Namespace) -> dict[str, Any]:
    from modelworks.jobs.run_job import Attempt

    home = Path(tempfile.mkdtemp(prefix=f"mw-bench-{backend}-"))
    try:
        settings = Settings.from_env({}, home=home, database_url=database_url, port=0)
        token = prepare(settings)
        seeded = seed(settings, args.runs, args.points)
        print(f"[{backend}] seeded {args.runs} runs, {seeded['points_per_run'] * args.runs} points in {seeded['seed_s']:.1f}s", flush=True)
        server = Server(settings)
        results: dict[str, Any] = {"seed_s": seeded["seed_s"], "points_per_run": seeded["points_per_run"]}
        try:
            with httpx.Client(base_url=f"{server.url}/api/v1/projects/{PROJECT}", headers={"Authorization": f"Bearer {token}"}, timeout=30) as http:
                def get(path: str, **params: Any) -> Callable[[], None]:
                    def call() -> None:
                        r = http.get(path, params=params)
                        r.raise_for_status()
                    return call

                first = http.get("/runs").json()
                assert first["total"] == args.runs and len(first["items"]) == 50, first["total"]
                mid_run = seeded["run_ids"][len(seeded["run_ids"]) // 2]
                mid_job = seeded["job_ids"][len(seeded["job_ids"]) // 2]
                detail = http.get(f"/runs/{mid_run}").json()
                assert sum(len(v) for v in detail["history"].values()) == seeded["points_per_run"]
                n, w = args.requests, args.warmup
                results["list_runs_first_page"] = timed(get("/runs", limit=50), n, w)
                results["list_runs_deep_page"] = timed(get("/runs", limit=50, offset=args.runs - 50), n, w)
                results["get_run_with_metrics"] = timed(get(f"/runs/{mid_run}"), n, w)
                results["job_metrics"] = timed(get(f"/jobs/{mid_job}/metrics"), n, w)
                print(f"[{backend}] reads done", flush=True)

                # Logging: the job child's own write path, while the server is up on the same database.
                engine = make_engine(settings.database_url)
                job_id, _, claim = add_job(settings, seeded["project_id"], with_run=False)
                attempt = Attempt(settings, session_factory(engine), job_id, claim)
                step = iter(range(10**9))

                def log(batch: int) -> Callable[[], None]:
                    def call() -> None:
                        s = next(step)
                        attempt.add_metrics([JobMetric(job_id=job_id, step=s, epoch=0, name="loss", value=1.0 / (s + 1)) for _ in range(batch)])
                    return call

                for batch in (1, 50):
                    r = timed(log(batch), n, w)
                    r["points_per_s"] = batch / (r["mean_ms"] / 1000)
                    results[f"log_metrics_batch_{batch}"] = r

                # One run with a long history: 10,000 points on one job.
                heavy_job, heavy_run, _ = add_job(settings, seeded["project_id"], with_run=True)
                with session_factory(engine)() as session:
                    session.execute(insert(JobMetric), [{"job_id": heavy_job, "step": k, "epoch": k // 100, "name": "loss", "value": 1.0 / (k + 1)}
                                                        for k in range(args.heavy_points)])
                    session.commit()
                engine.dispose()
                results["get_run_with_10k_points"] = timed(get(f"/runs/{heavy_run}"), max(n // 5, 20), 3)
                results["get_run_with_10k_points"]["points"] = args.heavy_points
                print(f"[{backend}] writes done", flush=True)
        finally:
            server.stop()
        return results
    finally:
        shutil.rmtree(home, ignore_errors=True)


# ------------------------------------------------------------------------------ part 2: ingestion


def bench_ingestion(args: argparse.Namespace) -> dict[str, Any]:
    import torch

    from modelworks.api import train
    from modelworks.jobs.run_job import Attempt, MetricsToDb
    from modelworks.training.callbacks import Callback

    home = Path(tempfile.mkdtemp(prefix="mw-bench-train-"))
    settings = Settings.from_env({}, home=home, database_url=f"sqlite:///{home / 'modelworks.db'}", port=0)
    prepare(settings)
    engine = make_engine(settings.database_url)
    sessions = session_factory(engine)
    with sessions() as session:
        project_id = create_project(session, session.scalar(select(User)), PROJECT).project.id
    base = yaml.safe_load(TRAIN_EXPERIMENT.read_text())
    base["data"]["limit"] = args.rows
    base["train"].update(epochs=args.epochs, progress=False, device="cpu")

    class FitTimer(Callback):
        def on_train_begin(self, state):
            self.t = time.perf_counter()

        def on_train_end(self, state):
            self.fit_s = time.perf_counter() - self.t

    def once(variant: str, i: int) -> dict[str, Any]:
        runs = home / f"{variant}-{i}" / "runs"
        runs.mkdir(parents=True)
        config = {**base, "runs_dir": str(runs), "name": "run"}
        callbacks: list[Callback] = []
        attempt = None
        write_s = [0.0]
        if variant == "db":
            job_id, _, claim = add_job(settings, project_id, with_run=False)
            attempt = Attempt(settings, sessions, job_id, claim)
            add = attempt.add_metrics

            def add_timed(points: list[JobMetric]) -> None:
                t = time.perf_counter()
                add(points)
                write_s[0] += time.perf_counter() - t

            attempt.add_metrics = add_timed  # type: ignore[method-assign]
            callbacks.append(MetricsToDb(attempt, runs, None))
        timer = FitTimer()
        callbacks.append(timer)  # last: its fit time includes the final flush
        t = time.perf_counter()
        train(config, callbacks=callbacks, progress=False)
        wall = time.perf_counter() - t
        out = {"variant": variant, "wall_s": wall, "fit_s": timer.fit_s}
        if attempt is not None:
            with sessions() as session:
                out["points"] = len(list(session.scalars(select(JobMetric.id).where(JobMetric.job_id == attempt.job_id))))
            out["write_s"] = write_s[0]
        print(f"  train {variant:5s} #{i}: wall {wall:.2f}s fit {timer.fit_s:.2f}s" + (f", {out['points']} points, {write_s[0] * 1000:.0f} ms writing" if attempt else ""), flush=True)
        return out

    once("plain", -1)  # warm-up: imports, data download cache, allocator
    trials = []
    for i in range(args.repeats):
        order = ("plain", "db") if i % 2 == 0 else ("db", "plain")
        trials += [once(v, i) for v in order]
    engine.dispose()
    shutil.rmtree(home, ignore_errors=True)

    plain = [t for t in trials if t["variant"] == "plain"]
    db = [t for t in trials if t["variant"] == "db"]
    med = lambda rows, k: statistics.median(r[k] for r in rows)  # noqa: E731
    points = statistics.median(t["points"] for t in db)
    return {
        "experiment": str(TRAIN_EXPERIMENT.relative_to(ROOT)), "rows": args.rows, "epochs": args.epochs, "repeats": args.repeats,
        "torch_threads": torch.get_num_threads(), "trials": trials,
        "wall_s": {"plain": med(plain, "wall_s"), "db": med(db, "wall_s")},
        "fit_s": {"plain": med(plain, "fit_s"), "db": med(db, "fit_s")},
        "overhead_wall": med(db, "wall_s") / med(plain, "wall_s") - 1,
        "overhead_fit": med(db, "fit_s") / med(plain, "fit_s") - 1,
        "write_s": med(db, "write_s"),
        "write_share_of_fit": med(db, "write_s") / med(db, "fit_s"),
        "points": points,
        "points_per_s_of_training": points / med(db, "fit_s"),
        "points_per_s_ingest_capacity": points / med(db, "write_s"),
    }


# ------------------------------------------------------------------------------ report


def table(api: dict[str, dict[str, Any]], ingest: dict[str, Any] | None) -> str:
    rows = [("list runs, first page (50)", "list_runs_first_page"), ("list runs, deep page (last 50)", "list_runs_deep_page"),
            ("run with its metrics (10 points)", "get_run_with_metrics"), ("job metrics route (10 points)", "job_metrics"),
            ("log metrics, 1 point (Attempt.add_metrics)", "log_metrics_batch_1"), ("log metrics, 50 points (Attempt.add_metrics)", "log_metrics_batch_50"),
            ("run with its metrics (10,000 points)", "get_run_with_10k_points")]
    backends = list(api)
    lines = ["| operation | " + " | ".join(f"{b} p50 ms | {b} p99 ms" for b in backends) + " |",
             "|---|" + "---:|---:|" * len(backends)]
    for label, key in rows:
        lines.append(f"| {label} | " + " | ".join(f"{api[b][key]['p50_ms']:.2f} | {api[b][key]['p99_ms']:.2f}" for b in backends) + " |")
    for b in backends:
        lines.append(f"\n{b}: logging throughput {api[b]['log_metrics_batch_1']['points_per_s']:.0f} points/s one at a time, "
                     f"{api[b]['log_metrics_batch_50']['points_per_s']:.0f} points/s in batches of 50")
    if ingest:
        lines += ["", f"| training (Fashion-MNIST CNN, {ingest['rows']} rows, {ingest['epochs']} epochs, CPU) | plain | with MetricsToDb |", "|---|---:|---:|",
                  f"| train() wall, median of {ingest['repeats']} (s) | {ingest['wall_s']['plain']:.2f} | {ingest['wall_s']['db']:.2f} |",
                  f"| fit time, median (s) | {ingest['fit_s']['plain']:.2f} | {ingest['fit_s']['db']:.2f} |",
                  f"| overhead on wall / fit time | | {ingest['overhead_wall'] * 100:+.2f}% / {ingest['overhead_fit'] * 100:+.2f}% |",
                  f"| points written per run | | {ingest['points']:.0f} |",
                  f"| points/s of training | | {ingest['points_per_s_of_training']:.0f} |",
                  f"| time in add_metrics (s, share of fit) | | {ingest['write_s']:.3f} ({ingest['write_share_of_fit'] * 100:.2f}%) |",
                  f"| ingestion capacity (points / s in add_metrics) | | {ingest['points_per_s_ingest_capacity']:.0f} |"]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=1000)
    parser.add_argument("--points", type=int, default=10_000, help="metric points spread evenly over the runs' jobs")
    parser.add_argument("--heavy-points", type=int, default=10_000, help="points of the one long-history run")
    parser.add_argument("--requests", type=int, default=300, help="timed requests per operation")
    parser.add_argument("--warmup", type=int, default=20)
    parser.add_argument("--rows", type=int, default=8000, help="Fashion-MNIST rows the training uses (data.limit)")
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--repeats", type=int, default=3, help="trainings per variant")
    parser.add_argument("--postgres", action="store_true", help="also PostgreSQL (Debian's initdb/pg_ctl)")
    parser.add_argument("--skip-training", action="store_true")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "platform_api.json")
    args = parser.parse_args()

    api: dict[str, dict[str, Any]] = {}
    with tempfile.TemporaryDirectory(prefix="mw-bench-") as tmp:
        api["sqlite"] = bench_api("sqlite", f"sqlite:///{Path(tmp) / 'modelworks.db'}", args)
    if args.postgres:
        bindir = pg_bindir()
        if bindir is None:
            print("PostgreSQL binaries not found: skipping --postgres", flush=True)
        else:
            cluster = PgCluster(bindir)
            try:
                api["postgresql"] = bench_api("postgresql", cluster.start(), args)
            finally:
                cluster.stop()
    ingest = None if args.skip_training else bench_ingestion(args)

    command = "python bench/platform_api.py " + " ".join(sys.argv[1:])
    result = {"command": command.strip(), "cpu_count": os.cpu_count(), "python": sys.version.split()[0],
              "runs": args.runs, "points": args.points, "requests": args.requests, "warmup": args.warmup,
              "seeding": "bulk SQLAlchemy inserts of Job, Run, JobMetric; project via create_project; admin via prepare",
              "server": "python -m modelworks up --workers 0, own process, 127.0.0.1",
              "logging": "no HTTP route: timed modelworks.jobs.run_job.Attempt.add_metrics (what MetricsToDb.flush calls)",
              "api": api, "ingestion": ingest}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print()
    print(table(api, ingest))
    print(f"\nwritten to {args.out}")


if __name__ == "__main__":
    main()
