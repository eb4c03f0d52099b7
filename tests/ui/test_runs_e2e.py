"""The run views over real jobs run by a real worker (slow: real training; ``test_runs_pages.py``
is the quick sibling that writes the same job stream itself): a training job's curve gains points
in the open page while it trains, then its report appears; a tuning job's study page lists its
trials with their params and Optuna's parameter importance."""

from __future__ import annotations

import uuid

import pytest

from tests.fixtures.jobs import Workers, finished

pytestmark = pytest.mark.slow

IRIS = {
    "data": {"source": "builtin:iris", "split": {"validation": 0.2, "test": 0.2, "seed": 1}},
    "model": {"type": "mlp", "hidden": [16]},
    "train": {"epochs": 12, "batch_size": 4, "device": "cpu", "progress": False},
    "evaluate": {"baselines": []},
}


@pytest.fixture(scope="module")
def worker(ui):
    workers = Workers(ui.settings)
    workers.start("--cpu-slots", "1")
    yield workers
    workers.stop_all()


@pytest.fixture(scope="module")
def project(ui) -> str:
    name = f"e2e-{uuid.uuid4().hex[:6]}"
    ui.client().create_project(name)
    return name


def test_a_training_jobs_curve_gains_points_while_it_trains(ui, worker, project, signed_in, shot, axe_check):
    job = ui.client().submit_job(project, "train", {**IRIS, "name": "鸢尾花-实时"})
    page = signed_in()
    page.goto(f"/ui/p/{project}/jobs/{job['id']}")
    page.wait_for_selector("html[data-charts-drawn]")
    # Points that arrived by a poll while the job said it was running: the curve grew as it trained.
    page.wait_for_selector("#curves[data-live-points]:not([data-live-points='0'])", timeout=240_000)
    assert page.inner_text("#job-state") in ("running", "succeeded")
    page.wait_for_selector("#finished[data-loaded] #per-class", timeout=240_000)
    assert page.locator("#confusion tbody tr").count() == 3
    assert int(page.get_attribute("#curves", "data-points")) == ui.client().job_metrics(project, job["id"])["total"]
    axe_check(page)
    shot(page, "run-trained")


def test_a_tuning_jobs_study_page_has_trials_params_and_importance(ui, worker, project, signed_in, shot, axe_check):
    config = {
        **IRIS,
        "name": "鸢尾花-调参",
        "train": {**IRIS["train"], "epochs": 2},
        "tune": {
            "metric": "val_accuracy",
            "trials": 3,
            "sampler": "random",
            "space": {"train.lr": {"loguniform": [0.001, 0.1]}},
        },
    }
    job = ui.client().submit_job(project, "tune", config)
    assert finished(ui.client(), project, job["id"], timeout=300)["state"] == "succeeded"
    page = signed_in()
    page.goto(f"/ui/p/{project}/jobs/{job['id']}")
    page.wait_for_selector("html[data-charts-drawn] #chart-history canvas")
    assert page.locator("#trials tbody tr").count() == 3
    assert "train.lr" in page.inner_text("#trials thead")
    page.wait_for_selector("#importance[aria-busy=false]")
    assert "train.lr" in page.inner_text("#importance")
    axe_check(page)
    shot(page, "study")
