"""Web UI figures: page render time at 1,000 runs, JS+CSS bytes, server CPU per open tab.

A fresh platform (SQLite; PostgreSQL too with ``--postgres`` where Debian's server binaries
exist) is seeded as ``bench/platform_api.py`` seeds it — ``--runs`` succeeded train jobs with a
run each and ``--points`` metric points per job (10 million rows by default) — plus one more run
made the way a job makes it (its metric stream through `Attempt.add_metrics`, its folder published
and recorded with a real ``report.json`` of 10 classes) with ``--points`` points in *each* of its
five metrics, one loss spike among them. The shipped server (``python -m modelworks up``) runs in
its own process; Debian's Chromium, driven by Playwright, opens the pages with a UI session:

- run list (``/ui/p/bench/jobs``, first page and the last): navigation start to the load event;
- run page of the measured run: navigation start to its charts drawn (the ``charts-drawn``
  performance mark that ``static/runs.js`` makes once every chart is on the canvas).

Each is the median of ``--repeats`` loads after one warm-up. Then the server's CPU time
(``/proc/PID/stat``) over ``--idle-seconds``: with no page open (the baseline), with ``--tabs``
finished-run pages open, with as many live pages of a running job (polling every 2 s), and with
those pages hidden (``visibilitychange``: they stop polling); per tab and minute, baseline taken
off. Also the bytes of every JS and CSS file the UI serves (raw and gzipped).

Writes bench/results/ui.json and prints a Markdown table.

    python bench/ui.py                       # SQLite, ~6 minutes on 2 cores
    python bench/ui.py --postgres            # also PostgreSQL (render times only)
    python bench/ui.py --runs 100 --points 1000 --idle-seconds 10   # a quick look
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import numpy as np
import yaml
from sqlalchemy import select

sys.path.insert(0, str(Path(__file__).resolve().parent))
import platform_api as api_bench  # noqa: E402  (the seeding and PostgreSQL helpers)

from modelworks.evaluate.metrics import compute_metrics, main_metric, summarize  # noqa: E402
from modelworks.jobs.attempt import Attempt, job_key  # noqa: E402
from modelworks.platform.bootstrap import prepare  # noqa: E402
from modelworks.platform.db import make_engine, session_factory  # noqa: E402
from modelworks.platform.db.models import Job, JobMetric, Project, User, utcnow  # noqa: E402
from modelworks.platform.runs import publish_run, record_run  # noqa: E402
from modelworks.platform.settings import Settings  # noqa: E402
from modelworks.platform.storage import Storage  # noqa: E402
from modelworks.store.report import MainMetric, Report, write_report_json  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
STATIC = ROOT / "modelworks" / "ui" / "static"
CHROMIUM = os.environ.get("MODELWORKS_TEST_CHROMIUM", "/usr/bin/chromium")
NAMES = ["loss", "train_loss", "val_loss", "val_accuracy", "lr"]
CLASSES = [f"类别{i}" for i in range(10)]


def say(*what: Any) -> None:
    print(time.strftime("%H:%M:%S"), *what, file=sys.stderr, flush=True)


# ------------------------------------------------------------------------------ seeding


def new_job(settings: Settings, sessions: Any) -> Attempt:
    """A running train job, claimed: its `Attempt` writes what a job's process writes."""
    token = uuid.uuid4().hex
    with sessions() as session:
        project = session.scalar(select(Project).where(Project.name == api_bench.PROJECT))
        admin = session.scalar(select(User).where(User.is_admin))
        config = {"name": "基准-run", "data": {"source": "builtin:digits"}, "model": {"type": "mlp"}}
        job = Job(project_id=project.id, kind="train", config=config, state="running", attempts=1,
                  claim_token=token, created_by_id=admin.id, started_at=utcnow())  # fmt: skip
        session.add(job)
        session.commit()
        return Attempt(settings, sessions, job.id, token)


def measured_run(settings: Settings, points: int, tmp: Path) -> dict[str, int]:
    """A run written the way a job writes one, with ``points`` points in each of five metrics."""
    engine = make_engine(settings.database_url)
    sessions = session_factory(engine)
    attempt = new_job(settings, sessions)
    rng = np.random.default_rng(0)
    for name in NAMES:
        values = np.exp(-np.arange(points) / (points / 5)) + 0.02 * rng.random(points)
        if name == "loss":
            values[points * 3 // 4] = 5.0  # one spike: it must survive the downsampling
        for lo in range(0, points, 5000):
            attempt.add_metrics(
                [JobMetric(job_id=attempt.job_id, step=s, epoch=s // 1000, name=name, value=float(values[s]))
                 for s in range(lo, min(points, lo + 5000))]
            )  # fmt: skip
    y = rng.integers(0, len(CLASSES), 2000)
    proba = rng.dirichlet(np.ones(len(CLASSES)), 2000) * 0.6
    proba[np.arange(2000), y] += 0.4
    metrics = compute_metrics("multiclass", y, proba, CLASSES)
    name, direction = main_metric("multiclass")
    summary = summarize(metrics)
    run_dir = tmp / "measured-run"
    run_dir.mkdir(parents=True)
    with sessions() as session:
        job = session.get(Job, attempt.job_id)
        (run_dir / "config.yaml").write_text(yaml.safe_dump(job.config, allow_unicode=True), encoding="utf-8")
        report = Report(title="基准-run", task="multiclass", class_names=CLASSES, summary=summary, metrics=metrics,
                        main_metric=MainMetric(name=name, direction=direction, value=summary.get(name)))  # fmt: skip
        write_report_json(run_dir, report)
        key = f"{job_key(job.project_id, job.id)}/run"
        run = record_run(session, job.project_id, run_dir, key, publish_run(Storage(settings.artifacts), run_dir, key),
                         job=job)  # fmt: skip
        run_id, job_id = run.id, job.id
        attempt.update(session, state="succeeded", finished_at=utcnow())
    live = new_job(settings, sessions)  # a job that stays running: its page polls
    engine.dispose()
    return {"run": run_id, "job": job_id, "live_job": live.job_id}


# ------------------------------------------------------------------------------ the server


class Server:
    """``python -m modelworks up --workers 0 --no-serving`` in its own process on a free loopback
    port; its output goes to a file (a pipe nobody reads could block it)."""

    def __init__(self, settings: Settings, log: Path, start_s: float = 300) -> None:
        import subprocess

        self.port = api_bench.free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        env = {**os.environ, "MODELWORKS_DATABASE_URL": settings.database_url}
        cmd = [sys.executable, "-m", "modelworks", "up", "--workers", "0", "--no-serving", "--host", "127.0.0.1",
               "--port", str(self.port), "--data-dir", str(settings.home)]  # fmt: skip
        self.log = open(log, "wb")  # noqa: SIM115 (closed in stop)
        self.proc = subprocess.Popen(cmd, env=env, stdout=self.log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + start_s  # a loaded 2-core machine takes a minute to import it all
        while not self._healthy():
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"the server did not start; its output: {log}")
            time.sleep(0.2)

    def _healthy(self) -> bool:
        import httpx

        try:
            return httpx.get(f"{self.url}/health", timeout=2).status_code == 200
        except httpx.TransportError:
            return False

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.log.close()


# ------------------------------------------------------------------------------ the browser


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime + stime


def render_times(context: Any, url: str, repeats: int, charts: bool) -> dict[str, float]:
    page = context.new_page()
    samples = []
    for i in range(repeats + 1):
        page.goto(url)
        if charts:
            page.wait_for_selector("html[data-charts-drawn]", timeout=60_000)
            ms = page.evaluate("() => performance.getEntriesByName('charts-drawn')[0].startTime")
        else:
            page.wait_for_load_state("load")
            ms = page.evaluate("() => performance.getEntriesByType('navigation')[0].loadEventEnd")
        if i:  # the first load warms the server's caches
            samples.append(ms)
    page.close()
    return {"median_ms": statistics.median(samples), "max_ms": max(samples), "n": len(samples)}


def tab_cpu(context: Any, pid: int, urls: list[str], seconds: float, hide: bool) -> float:
    """Server CPU seconds per tab per minute with one page per url open for ``seconds``."""
    pages = []
    for url in urls:
        page = context.new_page()
        page.goto(url)
        page.wait_for_selector("html[data-charts-drawn]", timeout=60_000)
        if hide:  # what the browser does when the tab goes to the background
            page.evaluate(
                "() => { Object.defineProperty(document, 'hidden', {value: true, configurable: true});"
                " Object.defineProperty(document, 'visibilityState', {value: 'hidden', configurable: true});"
                " document.dispatchEvent(new Event('visibilitychange')); }"
            )
        pages.append(page)
    start = cpu_seconds(pid)
    time.sleep(seconds)
    used = cpu_seconds(pid) - start
    for page in pages:
        page.close()
    return used * 60 / seconds


def browse(url: str, token: str, ids: dict[str, int], args: argparse.Namespace, pid: int | None) -> dict[str, Any]:
    from playwright.sync_api import sync_playwright

    base = f"{url}/ui/p/{api_bench.PROJECT}"
    out: dict[str, Any] = {}
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu"])
        context = browser.new_context(base_url=url, viewport={"width": 1280, "height": 900})
        assert context.request.post("/ui/session", headers={"Authorization": f"Bearer {token}"}).ok
        last = (args.runs // 50) * 50
        say("pages")
        out["run_list_first_page"] = render_times(context, f"{base}/jobs", args.repeats, charts=False)
        out["run_list_last_page"] = render_times(context, f"{base}/jobs?offset={last}", args.repeats, charts=False)
        out["run_page"] = render_times(context, f"{base}/runs/{ids['run']}", args.repeats, charts=True)
        out["compare_page"] = render_times(
            context, f"{base}/compare?runs={ids['run']},{ids['run'] - 1}", args.repeats, charts=True
        )
        if pid is not None and args.idle_seconds > 0:
            idle = args.idle_seconds
            say("CPU per tab", out)
            baseline = tab_cpu(context, pid, [], idle, hide=False)
            finished = tab_cpu(context, pid, [f"{base}/runs/{ids['run']}"] * args.tabs, idle, hide=False)
            live_url = [f"{base}/jobs/{ids['live_job']}"] * args.tabs
            live = tab_cpu(context, pid, live_url, idle, hide=False)
            hidden = tab_cpu(context, pid, live_url, idle, hide=True)
            per_tab = {k: max(0.0, (v - baseline) / args.tabs) for k, v in
                       (("finished_run", finished), ("live_job_visible", live), ("live_job_hidden", hidden))}  # fmt: skip
            out["server_cpu_s_per_tab_minute"] = {**per_tab, "baseline_per_minute": baseline, "tabs": args.tabs,
                                                  "seconds": idle}  # fmt: skip
        browser.close()
    return out


# ------------------------------------------------------------------------------ one backend


def bench_backend(backend: str, database_url: str | None, args: argparse.Namespace) -> dict[str, Any]:
    home = Path(tempfile.mkdtemp(prefix=f"mw-bench-ui-{backend}-"))
    database_url = database_url or f"sqlite:///{home / 'modelworks.db'}"
    settings = Settings.from_env({}, home=home, database_url=database_url, port=0)
    token = prepare(settings)
    say(backend, "seeding")
    seeded = api_bench.seed(settings, args.runs, args.points)
    ids = measured_run(settings, args.points, home / "tmp")
    say(backend, "seeded", ids)
    say(backend, "starting the server")
    server = Server(settings, home / "server.log")
    try:
        pid = server.proc.pid if backend == "sqlite" else None  # CPU per tab: measured once
        result = browse(server.url, token, ids, args, pid)
    finally:
        server.stop()
    return {"seed_s": seeded["seed_s"], "runs": args.runs + 1, **result}


def asset_bytes() -> dict[str, Any]:
    files = sorted(p for p in STATIC.rglob("*") if p.suffix in (".js", ".css"))
    raw = {str(p.relative_to(STATIC)): p.stat().st_size for p in files}
    zipped = sum(len(gzip.compress(p.read_bytes(), 9)) for p in files)
    return {"files": raw, "total_bytes": sum(raw.values()), "total_gzip_bytes": zipped}


def write(path: Path, results: dict[str, Any]) -> None:
    results["loadavg_after"] = Path("/proc/loadavg").read_text().split()[:3]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(results, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=1000)
    parser.add_argument("--points", type=int, default=10_000)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--tabs", type=int, default=5)
    parser.add_argument("--idle-seconds", type=float, default=60)
    parser.add_argument("--postgres", action="store_true")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "ui.json")
    args = parser.parse_args()

    results: dict[str, Any] = {
        "command": "python bench/ui.py " + " ".join(sys.argv[1:]),
        "cpu_count": os.cpu_count(),
        "loadavg_before": Path("/proc/loadavg").read_text().split()[:3],
        "points_per_metric_of_the_measured_run": args.points,
        "assets": asset_bytes(),
        "backends": {"sqlite": bench_backend("sqlite", None, args)},
    }
    write(args.out, results)  # kept even if the PostgreSQL half fails
    if args.postgres:
        bindir = api_bench.pg_bindir()
        if bindir is None:
            results["backends"]["postgresql"] = {"skipped": "no PostgreSQL server binaries"}
        else:
            cluster = api_bench.PgCluster(bindir)
            try:
                results["backends"]["postgresql"] = bench_backend("postgresql", cluster.start(), args)
            finally:
                cluster.stop()
    write(args.out, results)

    print("| backend | run list, first page | run list, last page | run page (charts drawn) | compare 2 runs |")
    print("|---|---:|---:|---:|---:|")
    for backend, r in results["backends"].items():
        if "skipped" in r:
            continue
        cells = [f"{r[k]['median_ms']:.0f} ms" for k in ("run_list_first_page", "run_list_last_page", "run_page",
                                                           "compare_page")]  # fmt: skip
        print(f"| {backend} | " + " | ".join(cells) + " |")
    print(f"JS+CSS: {results['assets']['total_bytes']} bytes ({results['assets']['total_gzip_bytes']} gzipped)")
    cpu = results["backends"]["sqlite"].get("server_cpu_s_per_tab_minute")
    if cpu:
        print("server CPU s per tab per minute:", {k: round(v, 4) for k, v in cpu.items() if isinstance(v, float)})


if __name__ == "__main__":
    main()
