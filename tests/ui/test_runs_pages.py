"""The run views in a real browser against the real server: a live curve that gains points while
its job runs and the report that replaces it when the job ends, the report of a run with Chinese
class names, compare, a tuning study's streamed trials, and the refusals.

The jobs here are written the way a job's own process writes them, through the platform's
functions (`Attempt.add_metrics` for the metric stream, `publish_run` and `record_run` for the run,
its ``report.json`` made by `compute_metrics` and the typed writer), so no worker has to train
anything; ``test_runs_e2e.py`` (slow) does the same with real training and tuning jobs.
"""

from __future__ import annotations

import re
import uuid
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import numpy as np
import pytest
import yaml
from sqlalchemy import select

from modelworks.evaluate.metrics import compute_metrics, main_metric, summarize
from modelworks.jobs.attempt import Attempt, job_key
from modelworks.platform.db import make_engine, session_factory
from modelworks.platform.db.models import Job, JobMetric, Project, User, utcnow
from modelworks.platform.runs import publish_run, record_run
from modelworks.platform.storage import Storage
from modelworks.store.report import MainMetric, Report, write_report_json

CLASSES = ["山鸢尾", "变色鸢尾", "<i>维吉尼亚</i>"]  # Chinese, and one that must stay text


class Team:
    """A project in the UI's platform, with jobs written as a job's process writes them."""

    def __init__(self, ui: Any, tmp: Path) -> None:
        self.ui, self.tmp = ui, tmp
        self.name = f"runs-{uuid.uuid4().hex[:6]}"
        ui.client().create_project(self.name)
        self.engine = make_engine(ui.settings.database_url)
        self.sessions = session_factory(self.engine)

    def job(self, config: dict[str, Any], kind: str = "train") -> Attempt:
        """A running job, claimed: its `Attempt` writes what the job's process would."""
        token = uuid.uuid4().hex
        with self.sessions() as session:
            project = session.scalar(select(Project).where(Project.name == self.name))
            admin = session.scalar(select(User).where(User.is_admin))
            job = Job(
                project_id=project.id,
                kind=kind,
                config=config,
                state="running",
                attempts=1,
                claim_token=token,
                created_by_id=admin.id,
                started_at=utcnow(),
            )
            session.add(job)
            session.commit()
            return Attempt(self.ui.settings, self.sessions, job.id, token)

    def points(self, attempt: Attempt, name: str, steps: range, value: Any) -> None:
        attempt.add_metrics(
            [JobMetric(job_id=attempt.job_id, step=s, epoch=s // 100, name=name, value=value(s)) for s in steps]
        )

    def finish(self, attempt: Attempt, classes: list[str], seed: int) -> int:
        """Write the job's run folder (config, a real report), publish and record it, and end the job."""
        rng = np.random.default_rng(seed)
        y = rng.integers(0, len(classes), 60)
        proba = rng.dirichlet(np.ones(len(classes)), 60) * 0.5
        proba[np.arange(60), y] += 0.3  # mostly right
        metrics = compute_metrics("multiclass", y, proba, classes)
        name, direction = main_metric("multiclass")
        summary = summarize(metrics)
        run_dir = self.tmp / f"job-{attempt.job_id}" / "run"
        run_dir.mkdir(parents=True)
        with self.sessions() as session:
            job = session.get(Job, attempt.job_id)
            (run_dir / "config.yaml").write_text(yaml.safe_dump(job.config, allow_unicode=True), encoding="utf-8")
            report = Report(
                title=str(job.config.get("name")),
                task="multiclass",
                class_names=classes,
                main_metric=MainMetric(name=name, direction=direction, value=summary.get(name)),
                summary=summary,
                metrics=metrics,
            )
            write_report_json(run_dir, report)
            key = f"{job_key(job.project_id, job.id)}/run"
            artifacts = publish_run(Storage(self.ui.settings.artifacts), run_dir, key)
            run = record_run(session, job.project_id, run_dir, key, artifacts, job=job)
            run_id = run.id
            attempt.update(session, state="succeeded", finished_at=utcnow())
        return run_id

    def close(self) -> None:
        self.engine.dispose()


def experiment(name: str, lr: float) -> dict[str, Any]:
    return {
        "name": name,
        "data": {"source": "builtin:iris"},
        "model": {"type": "mlp", "hidden": [16]},
        "train": {"epochs": 3, "lr": lr},
    }


@pytest.fixture(scope="module")
def team(ui, tmp_path_factory):
    t = Team(ui, tmp_path_factory.mktemp("team"))
    yield t
    t.close()


@pytest.fixture(scope="module")
def two_runs(team) -> list[int]:
    """Two finished runs with 10,000 loss points each (one spike) and a few validation points."""
    ids = []
    for i, lr in enumerate((0.01, 0.1)):
        attempt = team.job(experiment(f"鸢尾花-{i}", lr))
        team.points(attempt, "loss", range(10_000), lambda s, i=i: 9.0 if s == 7_777 else 1.0 / (1 + s * (i + 1)))
        team.points(attempt, "val_accuracy", range(0, 10_000, 1000), lambda s, i=i: 0.5 + s / 40_000 + i / 10)
        ids.append(team.finish(attempt, CLASSES, seed=i))
    return ids


def test_a_live_curve_gains_points_while_the_job_runs_then_shows_its_report(ui, team, signed_in, shot, axe_check):
    attempt = team.job(experiment("实时训练", 0.05))
    team.points(attempt, "loss", range(0, 10), lambda s: 2.0 - s / 10)
    page = signed_in()
    page.goto(f"/ui/p/{team.name}/jobs/{attempt.job_id}")
    page.wait_for_selector("html[data-charts-drawn] #chart-loss canvas")
    assert page.get_attribute("#curves", "data-points") == "10"
    for batch in range(2):  # the job streams more while the page is open: the chart gains them, no reload
        team.points(attempt, "loss", range(10 + 10 * batch, 20 + 10 * batch), lambda s: 2.0 - s / 10)
        page.wait_for_selector(f"#curves[data-live-points='{10 * (batch + 1)}']")
    team.points(attempt, "val_accuracy", range(0, 30, 10), lambda s: 0.3 + s / 100)
    page.wait_for_selector("#chart-metrics canvas")
    assert page.locator("#chart-metrics .u-legend").inner_text().count("val_accuracy") == 1
    axe_check(page)
    shot(page, "run-live")

    team.finish(attempt, CLASSES, seed=7)  # the job ends: the page stops polling and shows the run
    page.wait_for_selector("#finished[data-loaded] #per-class")
    assert page.inner_text("#job-state") == "succeeded"
    assert page.locator("#confusion tbody td").count() == len(CLASSES) ** 2
    final = int(page.get_attribute("#curves", "data-points"))
    assert final == 33  # every point, once


def test_the_report_shows_per_class_table_heatmap_and_curves_with_chinese_names(
    ui, team, two_runs, signed_in, shot, axe_check
):
    page = signed_in()
    page.goto(f"/ui/p/{team.name}/runs/{two_runs[0]}")
    page.wait_for_selector("html[data-charts-drawn]")
    assert page.inner_text("h1") == "鸢尾花-0"
    table = page.inner_text("#per-class")
    assert all(name in table for name in CLASSES)  # the HTML-looking class name is shown as text
    assert page.locator("#per-class i, #confusion i").count() == 0
    assert page.locator("#confusion thead th").count() == len(CLASSES) + 1
    assert page.locator("svg.svgchart polyline").count() == 2 * len(CLASSES)  # ROC and PR, one per class
    # The 10,000-point loss arrives cut down, with its one spike.
    spike = page.evaluate(
        "() => fetch(document.getElementById('curves').dataset.series).then(r => r.json())"
        ".then(a => [a.series.loss.total, a.series.loss.x.length, Math.max(...a.series.loss.y)])"
    )
    assert spike[0] == 10_000 and spike[1] <= 1002 and spike[2] == 9.0
    link = page.locator("#files-h + table a", has_text="report.json")
    with page.expect_download() as download:
        link.click()
    assert download.value.suggested_filename == "report.json"
    axe_check(page)
    shot(page, "run-report")


def duration(job: dict[str, Any]) -> float:
    return (datetime.fromisoformat(job["finished_at"]) - datetime.fromisoformat(job["started_at"])).total_seconds()


def test_compare_two_runs_shows_both_curves_and_the_config_diff(ui, team, two_runs, signed_in, shot, axe_check):
    page = signed_in(locale="zh-CN")
    # Reached from the jobs table, sorted by duration in the database: tick two runs, press Compare.
    page.goto(f"/ui/p/{team.name}/jobs?state=succeeded&sort=duration&order=desc")
    shown = page.locator("#jobs-table tbody tr").evaluate_all("rows => rows.map(r => Number(r.dataset.job))")
    jobs = ui.client().jobs(team.name, state="succeeded", limit=200)["items"]
    assert len(shown) == len(jobs) >= 2
    assert shown == [j["id"] for j in sorted(jobs, key=lambda j: (-duration(j), -j["id"]))]
    for run_id in two_runs:
        page.check(f"#jobs-table input[name=runs][value='{run_id}']")
    page.click("#compare-button")
    page.wait_for_url(re.compile(rf"/ui/p/{team.name}/compare\?runs=\d+&runs=\d+$"))
    assert sorted(map(int, parse_qs(urlsplit(page.url).query)["runs"])) == sorted(two_runs)
    page.wait_for_selector("html[data-charts-drawn] #compare-charts canvas")
    legend = page.inner_text("#compare-charts figure:first-child .u-legend")
    assert f"#{two_runs[0]} 鸢尾花-0" in legend and f"#{two_runs[1]} 鸢尾花-1" in legend
    differs = page.locator("#compare-params tr.differs th").all_inner_texts()
    assert any(t.startswith("train.lr") for t in differs) and any(t.startswith("name") for t in differs)
    assert not any(t.startswith("model.type") for t in differs)
    diff = page.inner_text("pre.diff")
    first, second = map(int, parse_qs(urlsplit(page.url).query)["runs"])  # the diff runs from the first to the second
    lr = dict(zip(two_runs, ["0.01", "0.1"], strict=True))
    assert diff.startswith(f"--- #{first} ") and f"\n+++ #{second} " in diff
    assert f"-  lr: {lr[first]}\n" in diff and f"+  lr: {lr[second]}\n" in diff
    axe_check(page)
    shot(page, "compare")


def test_a_study_page_lists_the_streamed_trials(ui, team, signed_in, shot, axe_check):
    config = {**experiment("调参", 0.01), "tune": {"metric": "val_accuracy", "direction": "max", "trials": 4}}
    attempt = team.job(config, kind="tune")
    values = [0.6, 0.8, 0.7, 0.9]
    attempt.add_metrics(
        [JobMetric(job_id=attempt.job_id, step=n, epoch=3, name="val_accuracy", value=v) for n, v in enumerate(values)]
    )
    page = signed_in()
    page.goto(f"/ui/p/{team.name}/jobs/{attempt.job_id}")
    page.wait_for_selector("html[data-charts-drawn] #chart-history canvas")
    page.wait_for_selector("#importance[aria-busy=false]")
    assert page.locator("#trials tbody tr").count() == 4
    assert page.inner_text("#trials tr.best td:first-child") == "3"
    axe_check(page)
    shot(page, "study-streamed")


def test_another_projects_viewer_gets_404_and_pages_need_a_session(ui, team, two_runs, signed_in):
    _, token = ui.new_user("outsider")
    page = signed_in(token)
    job = team.ui.client().run(team.name, two_runs[0])["job_id"]
    base = f"/ui/p/{team.name}"
    for path in (
        f"/jobs/{job}",
        f"/runs/{two_runs[0]}",
        f"/jobs/{job}/series",
        f"/jobs/{job}/live",
        f"/runs/{two_runs[0]}/report",
        f"/runs/{two_runs[0]}/files/report.json",
        f"/compare?runs={two_runs[0]},{two_runs[1]}",
        f"/compare/series?runs={two_runs[0]},{two_runs[1]}",
    ):
        assert page.context.request.get(base + path).status == 404, path
    anonymous = signed_in(token=False)
    anonymous.goto(f"{base}/runs/{two_runs[0]}")
    assert re.search(r"/ui/signin\?next=", anonymous.url)
    bad = signed_in().context.request.get(f"{base}/compare?runs={two_runs[0]}")
    assert bad.status == 400 and "compare 2 to 5 runs; got 1" in bad.text()
