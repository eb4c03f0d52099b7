"""Platform API latency at 1k runs x 10k metric points each, and metric ingestion from a real training job.

Part 1 (API). A fresh platform in a temporary folder (SQLite; PostgreSQL too with ``--postgres``
where Debian's server binaries exist), migrated and bootstrapped with `prepare`, is seeded with
the platform's own tables: ``--runs`` succeeded train `Job` rows, one `Run` per job (a resolved
digits config, a 9-file artifact manifest, final metrics) by SQLAlchemy bulk inserts, and
``--points`` `JobMetric` rows per job (five metric names; 10 million rows by default) through the
driver's fastest bulk path (executemany on SQLite, COPY on PostgreSQL). The shipped server
(``python -m modelworks up --workers 0``) is then started in its own process on 127.0.0.1, so
that client and server do not share a GIL, and httpx times each request after a warm-up:

- GET  /api/v1/projects/{p}/runs                       first page (limit 50), and a deep page (offset 950)
- GET  /api/v1/projects/{p}/runs/{id}                  one run, its 10k-point history thinned to 500 per metric
- GET  /api/v1/projects/{p}/runs/{id}?points=10000     the same, every point
- GET  /api/v1/projects/{p}/jobs/{id}/metrics          a page of 1,000 points, first and last

There is no HTTP route for logging metrics: a job's child process writes them straight into the
database through `modelworks.jobs.run_job.Attempt.add_metrics` (called by the `MetricsToDb`
callback's flush), so that function is what is timed, with batches of 1 and of 50 points, while
the server is up on the same (10-million-point) database.

Part 2 (ingestion). A real `modelworks.train` of ``examples/fashion_mnist_cnn.yaml`` on a
``--rows`` subset (CPU), run
``--repeats`` times in each of two variants in this one process, order alternated (AB BA AB ...):
``plain`` (no callback) and ``db`` (the job runner's `MetricsToDb` writing to an SQLite platform
database through a claimed job's `Attempt`). Reports the points written, points/s of training,
the ingestion capacity (points per second spent inside ``add_metrics``) and the overhead on
training wall time (median db / median plain - 1; the goal is <= 2%).

Prints a Markdown table and writes bench/results/platform_api.json.

    python bench/platform_api.py                      # SQLite, ~8 minutes on 2 CPU cores
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
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import httpx
import yaml
from sqlalchemy import insert, select

from modelworks.platform.bootstrap import prepare
from modelworks.platform.db import make_engine, session_factory
from modelworks.platform.db.models import Job, JobMetric, Run, User
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
    dirs = sorted(
        Path("/usr/lib/postgresql").glob("*/bin"),
        key=lambda p: int(p.parent.name) if p.parent.name.isdigit() else 0,
        reverse=True,
    )
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
        self._run(
            "initdb",
            "-D",
            str(self.root / "data"),
            "-U",
            "postgres",
            "-A",
            "trust",
            "--no-sync",
            "-E",
            "UTF8",
            "--no-locale",
        )
        options = f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off -c full_page_writes=off"
        self._run(
            "pg_ctl",
            "-D",
            str(self.root / "data"),
            "-l",
            str(self.root / "server.log"),
            "-w",
            "-t",
            "60",
            "-o",
            options,
            "start",
        )
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
    files = [
        "config.yaml",
        "environment.json",
        "history.jsonl",
        "metrics.json",
        "model.safetensors",
        "preprocess.json",
        "report.json",
        "report.md",
        "checkpoint.safetensors",
    ]
    artifacts = [{"path": f, "size": 1000 + 37 * i, "sha256": f"{i:064x}"} for i, f in enumerate(files)]
    metrics = {"accuracy": 0.97, "macro_f1": 0.969, "loss": 0.11, "val_accuracy": 0.975}
    return config, artifacts, metrics


def seed(settings: Settings, runs: int, per_run: int) -> dict[str, Any]:
    """A project with ``runs`` succeeded train jobs, each with a Run and ``per_run`` JobMetric rows."""
    engine = make_engine(settings.database_url)
    sessions = session_factory(engine)
    config, artifacts, metrics = run_template()
    t0 = time.perf_counter()
    with sessions() as session:
        admin = session.scalar(select(User))
        project = create_project(session, admin, PROJECT).project
        start = datetime(2025, 1, 1, tzinfo=timezone.utc)
        session.execute(
            insert(Job),
            [
                {
                    "project_id": project.id,
                    "kind": "train",
                    "config": config,
                    "state": "succeeded",
                    "attempts": 1,
                    "created_by_id": admin.id,
                    "created_at": start + timedelta(minutes=i),
                    "run_dir": f"/runs/{i}",
                }
                for i in range(runs)
            ],
        )
        job_ids = list(session.scalars(select(Job.id).where(Job.project_id == project.id).order_by(Job.id)))
        session.execute(
            insert(Run),
            [
                {
                    "project_id": project.id,
                    "job_id": j,
                    "run_dir": f"/runs/{i}",
                    "config": config,
                    "lineage": {"source": "builtin:digits"},
                    "code_version": {"git_commit": "0" * 40, "modelworks": "0.1.0"},
                    "metrics": metrics,
                    "artifacts": artifacts,
                    "created_at": start + timedelta(minutes=i),
                }
                for i, j in enumerate(job_ids)
            ],
        )
        session.commit()
        run_ids = list(session.scalars(select(Run.id).where(Run.project_id == project.id).order_by(Run.id)))
    insert_points(engine, job_ids, per_run)
    engine.dispose()
    return {
        "project_id": project.id,
        "job_ids": job_ids,
        "run_ids": run_ids,
        "points_per_run": per_run,
        "seed_s": time.perf_counter() - t0,
    }


def insert_points(engine: Any, job_ids: list[int], per_run: int) -> None:
    """``per_run`` points on each job (five names, as a training job streams them), a job at a time."""
    names = ["loss", "train_loss", "val_loss", "val_accuracy", "lr"]
    at = datetime(2025, 1, 1, tzinfo=timezone.utc)
    columns = ("job_id", "step", "epoch", "name", "value", "at")
    raw = engine.raw_connection()
    try:
        cursor = raw.cursor()
        for j in job_ids:
            rows = [(j, k * 20, k // 500, names[k % len(names)], 1.0 / (k + 1), at) for k in range(per_run)]
            if engine.dialect.name == "postgresql":
                with cursor.copy(f"COPY job_metrics ({', '.join(columns)}) FROM STDIN") as copy:
                    for row in rows:
                        copy.write_row(row)
            else:
                cursor.executemany(
                    f"INSERT INTO job_metrics ({', '.join(columns)}) VALUES (?, ?, ?, ?, ?, ?)",
                    [(*r[:5], r[5].isoformat(sep=" ")) for r in rows],
                )
        raw.commit()
    finally:
        raw.close()


def add_job(settings: Settings, project_id: int) -> tuple[int, str]:
    """A running job claimed with a fresh token: what a worker hands its child."""
    engine = make_engine(settings.database_url)
    token = uuid.uuid4().hex
    with session_factory(engine)() as session:
        job = Job(project_id=project_id, kind="train", config={}, state="running", attempts=1, claim_token=token)
        session.add(job)
        session.commit()
        job_id = job.id
    engine.dispose()
    return job_id, token


# ------------------------------------------------------------------------------ the server


class Server:
    """``python -m modelworks up --workers 0`` in its own process, on a free loopback port."""

    def __init__(self, settings: Settings) -> None:
        self.port = free_port()
        env = {**os.environ, "MODELWORKS_DATABASE_URL": settings.database_url}
        cmd = [
            sys.executable,
            "-m",
            "modelworks",
            "up",
            "--workers",
            "0",
            "--host",
            "127.0.0.1",
            "--port",
            str(self.port),
            "--data-dir",
            str(settings.home),
        ]
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
                raise RuntimeError(
                    f"the server did not start: {self.proc.stderr.read().decode() if self.proc.stderr else ''}"
                )
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
        print(
            f"[{backend}] seeded {args.runs} runs, {seeded['points_per_run'] * args.runs} points in {seeded['seed_s']:.1f}s",
            flush=True,
        )
        server = Server(settings)
        results: dict[str, Any] = {"seed_s": seeded["seed_s"], "points_per_run": seeded["points_per_run"]}
        try:
            with httpx.Client(
                base_url=f"{server.url}/api/v1/projects/{PROJECT}",
                headers={"Authorization": f"Bearer {token}"},
                timeout=30,
            ) as http:

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
                assert sum(detail["history_points"].values()) == args.points, detail["history_points"]
                full = http.get(f"/runs/{mid_run}", params={"points": 10_000}).json()
                assert sum(len(v) for v in full["history"].values()) == args.points
                results["history_points_sent"] = {
                    "default": sum(len(v) for v in detail["history"].values()),
                    "full": args.points,
                }
                n, w = args.requests, args.warmup
                results["list_runs_first_page"] = timed(get("/runs", limit=50), n, w)
                results["list_runs_deep_page"] = timed(get("/runs", limit=50, offset=args.runs - 50), n, w)
                results["get_run_thinned"] = timed(get(f"/runs/{mid_run}"), n, w)
                results["get_run_every_point"] = timed(get(f"/runs/{mid_run}", points=10_000), max(n // 5, 20), 3)
                results["job_metrics_first_page"] = timed(get(f"/jobs/{mid_job}/metrics", limit=1000), n, w)
                results["job_metrics_last_page"] = timed(
                    get(f"/jobs/{mid_job}/metrics", limit=1000, offset=args.points - 1000), n, w
                )
                print(f"[{backend}] reads done", flush=True)

                # Logging: the job child's own write path, while the server is up on the same database.
                engine = make_engine(settings.database_url)
                job_id, claim = add_job(settings, seeded["project_id"])
                attempt = Attempt(settings, session_factory(engine), job_id, claim)
                step = iter(range(10**9))

                def log(batch: int) -> Callable[[], None]:
                    def call() -> None:
                        s = next(step)
                        attempt.add_metrics(
                            [
                                JobMetric(job_id=job_id, step=s, epoch=0, name="loss", value=1.0 / (s + 1))
                                for _ in range(batch)
                            ]
                        )

                    return call

                for batch in (1, 50):
                    r = timed(log(batch), n, w)
                    r["points_per_s"] = batch / (r["mean_ms"] / 1000)
                    results[f"log_metrics_batch_{batch}"] = r

                engine.dispose()
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
            job_id, claim = add_job(settings, project_id)
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
        t, cpu = time.perf_counter(), time.process_time()
        train(config, callbacks=callbacks, progress=False)
        wall, cpu = time.perf_counter() - t, time.process_time() - cpu
        out = {"variant": variant, "wall_s": wall, "fit_s": timer.fit_s, "cpu_s": cpu}
        if attempt is not None:
            with sessions() as session:
                out["points"] = len(
                    list(session.scalars(select(JobMetric.id).where(JobMetric.job_id == attempt.job_id)))
                )
            out["write_s"] = write_s[0]
        print(
            f"  train {variant:5s} #{i}: wall {wall:.2f}s fit {timer.fit_s:.2f}s"
            + (f", {out['points']} points, {write_s[0] * 1000:.0f} ms writing" if attempt else ""),
            flush=True,
        )
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
        "experiment": str(TRAIN_EXPERIMENT.relative_to(ROOT)),
        "rows": args.rows,
        "epochs": args.epochs,
        "repeats": args.repeats,
        "torch_threads": torch.get_num_threads(),
        "trials": trials,
        "wall_s": {"plain": med(plain, "wall_s"), "db": med(db, "wall_s")},
        "fit_s": {"plain": med(plain, "fit_s"), "db": med(db, "fit_s")},
        "overhead_wall": med(db, "wall_s") / med(plain, "wall_s") - 1,
        "overhead_fit": med(db, "fit_s") / med(plain, "fit_s") - 1,
        "cpu_s": {"plain": med(plain, "cpu_s"), "db": med(db, "cpu_s")},
        "overhead_cpu": med(db, "cpu_s") / med(plain, "cpu_s") - 1,
        "write_s": med(db, "write_s"),
        "write_share_of_fit": med(db, "write_s") / med(db, "fit_s"),
        "points": points,
        "points_per_s_of_training": points / med(db, "fit_s"),
        "points_per_s_ingest_capacity": points / med(db, "write_s"),
    }


# ------------------------------------------------------------------------------ report


def table(api: dict[str, dict[str, Any]], ingest: dict[str, Any] | None) -> str:
    rows = [
        ("list runs, first page (50)", "list_runs_first_page"),
        ("list runs, deep page (last 50)", "list_runs_deep_page"),
        ("run with its history thinned to 500 per metric", "get_run_thinned"),
        ("run with every point (10,000)", "get_run_every_point"),
        ("job metrics, first page of 1,000", "job_metrics_first_page"),
        ("job metrics, last page of 1,000", "job_metrics_last_page"),
        ("log metrics, 1 point (Attempt.add_metrics)", "log_metrics_batch_1"),
        ("log metrics, 50 points (Attempt.add_metrics)", "log_metrics_batch_50"),
    ]
    backends = list(api)
    lines = (
        []
        if not api
        else [
            "| operation | " + " | ".join(f"{b} p50 ms | {b} p99 ms" for b in backends) + " |",
            "|---|" + "---:|---:|" * len(backends),
        ]
    )
    for label, key in rows if api else []:
        lines.append(
            f"| {label} | "
            + " | ".join(f"{api[b][key]['p50_ms']:.2f} | {api[b][key]['p99_ms']:.2f}" for b in backends)
            + " |"
        )
    for b in backends:
        lines.append(
            f"\n{b}: logging throughput {api[b]['log_metrics_batch_1']['points_per_s']:.0f} points/s one at a time, "
            f"{api[b]['log_metrics_batch_50']['points_per_s']:.0f} points/s in batches of 50"
        )
    if ingest:
        lines += [
            "",
            f"| training (Fashion-MNIST CNN, {ingest['rows']} rows, {ingest['epochs']} epochs, CPU) | plain | with MetricsToDb |",
            "|---|---:|---:|",
            f"| train() wall, median of {ingest['repeats']} (s) | {ingest['wall_s']['plain']:.2f} | {ingest['wall_s']['db']:.2f} |",
            f"| fit time, median (s) | {ingest['fit_s']['plain']:.2f} | {ingest['fit_s']['db']:.2f} |",
            f"| process CPU time, median (s) | {ingest['cpu_s']['plain']:.2f} | {ingest['cpu_s']['db']:.2f} |",
            f"| overhead on wall / fit / CPU time | | {ingest['overhead_wall'] * 100:+.2f}% / {ingest['overhead_fit'] * 100:+.2f}% / {ingest['overhead_cpu'] * 100:+.2f}% |",
            f"| points written per run | | {ingest['points']:.0f} |",
            f"| points/s of training | | {ingest['points_per_s_of_training']:.0f} |",
            f"| time in add_metrics (s, share of fit) | | {ingest['write_s']:.3f} ({ingest['write_share_of_fit'] * 100:.2f}%) |",
            f"| ingestion capacity (points / s in add_metrics) | | {ingest['points_per_s_ingest_capacity']:.0f} |",
        ]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=1000)
    parser.add_argument("--points", type=int, default=10_000, help="metric points per run (on its job)")
    parser.add_argument("--requests", type=int, default=300, help="timed requests per operation")
    parser.add_argument("--warmup", type=int, default=20)
    parser.add_argument("--rows", type=int, default=8000, help="Fashion-MNIST rows the training uses (data.limit)")
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--repeats", type=int, default=5, help="trainings per variant")
    parser.add_argument("--postgres", action="store_true", help="also PostgreSQL (Debian's initdb/pg_ctl)")
    parser.add_argument("--skip-training", action="store_true")
    parser.add_argument("--skip-api", action="store_true", help="only part 2 (ingestion); use with --out")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "platform_api.json")
    args = parser.parse_args()

    api: dict[str, dict[str, Any]] = {}
    if not args.skip_api:
        with tempfile.TemporaryDirectory(prefix="mw-bench-") as tmp:
            api["sqlite"] = bench_api("sqlite", f"sqlite:///{Path(tmp) / 'modelworks.db'}", args)
    if args.postgres and not args.skip_api:
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
    result = {
        "command": command.strip(),
        "cpu_count": os.cpu_count(),
        "python": sys.version.split()[0],
        "runs": args.runs,
        "points": args.points,
        "requests": args.requests,
        "warmup": args.warmup,
        "seeding": "Job, Run: SQLAlchemy bulk inserts; JobMetric: executemany (SQLite) / COPY (PostgreSQL); project via create_project; admin via prepare",
        "server": "python -m modelworks up --workers 0, own process, 127.0.0.1",
        "logging": "no HTTP route: timed modelworks.jobs.run_job.Attempt.add_metrics (what MetricsToDb.flush calls)",
        "api": api,
        "ingestion": ingest,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print()
    print(table(api, ingest))
    print(f"\nwritten to {args.out}")


if __name__ == "__main__":
    main()
