"""The pages of the web UI in a real browser against the real server: datasets (upload with
Chinese columns, a column named <script>, a built-in with image thumbnails), the new-experiment
editor (problems at their lines, submit), the jobs table, models (register, move an alias),
roles (a viewer sees no button that would fail and not another project). Every page is scanned
with axe-core and photographed."""

from __future__ import annotations

import re

from tests.fixtures.jobs import LONGER

SPECIES = ["山鸢尾", "变色鸢尾", "维吉尼亚鸢尾"]
ROWS = "".join(f"{5 + i % 7 * 0.3:.1f},{3 + i % 5 * 0.2:.1f},x{i % 3},{SPECIES[i % 3]}\n" for i in range(60))
CSV = ("花萼长度,花萼宽度,<script>window.pwned=1</script>,品种\n" + ROWS).encode("utf-8")


def test_upload_a_chinese_csv_then_start_an_experiment_on_it(ui, world, signed_in, shot, axe_check):
    project = world["project"]
    page = signed_in(world["editor"]["token"])
    page.goto(f"/ui/p/{project}/datasets")
    axe_check(page)
    shot(page, "datasets")
    page.fill("#upload-name", "flowers")
    page.set_input_files("#upload-file", files=[{"name": "鸢尾.csv", "mimeType": "text/csv", "buffer": CSV}])
    page.click("#upload button[type=submit]")
    page.wait_for_url(re.compile(r"/datasets/flowers/versions/1$"))
    schema = page.locator("table.schema tbody td:first-child").all_inner_texts()
    assert schema == ["花萼长度", "花萼宽度", "<script>window.pwned=1</script>", "品种"]
    assert page.evaluate("() => window.pwned") is None  # the column name is text, never markup
    assert page.locator("main script").count() == 0
    assert "山鸢尾" in page.inner_text("table.preview")
    assert page.locator("form[action$='/delete']").count() == 0  # deleting a dataset is the owner's
    axe_check(page)
    shot(page, "dataset-version")

    page.click("text=New experiment on this version")
    editor = page.locator("#config")
    text = editor.input_value()
    assert "source: dataset:flowers@1" in text
    text = text.replace("  split:", "  target: 品种\n  split:", 1).replace("  epochs: 30", "  epochs: 2\n  lrr: 0.1", 1)
    editor.fill(text)
    page.click("button[value=check]")
    page.wait_for_selector("ol.problems")
    bad_line = next(i for i, line in enumerate(text.split("\n"), start=1) if line.strip().startswith("lrr:"))
    problem = page.inner_text("ol.problems li")
    assert f"line {bad_line}" in problem and "train.lrr" in problem and "lr" in problem
    assert "train.lrr" in page.inner_text(f"#line-{bad_line}")
    axe_check(page)
    shot(page, "new-experiment-problems")
    page.locator("#config").fill(text.replace("\n  lrr: 0.1", ""))
    page.click("button[value=submit]")
    page.wait_for_url(re.compile(rf"/ui/p/{project}/jobs\?submitted=\d+"))
    job_id = int(page.url.rsplit("=", 1)[1])
    row = page.locator(f"tr[data-job='{job_id}']")
    assert "train" in row.inner_text()
    assert ui.client().job(project, job_id)["config"]["data"]["target"] == "品种"
    axe_check(page)
    shot(page, "jobs")
    page.click("button[data-lang='zh-CN']")  # the same table in Chinese
    page.wait_for_selector("h1:text('作业与运行')")
    assert "训练" in row.inner_text() and page.get_attribute("html", "lang") == "zh-CN"
    shot(page, "jobs-zh")


def test_register_a_built_in_and_see_its_thumbnails(ui, world, signed_in, axe_check, shot):
    page = signed_in(world["editor"]["token"])
    page.goto(f"/ui/p/{world['project']}/datasets")
    page.fill("#builtin-name", "digits")
    page.select_option("#builtin-which", "digits")
    page.click("form[action$='/datasets/builtin'] button[type=submit]")
    page.wait_for_url(re.compile(r"/datasets/digits/versions/1$"))
    thumbs = page.locator("table.preview img")
    assert thumbs.count() == 20
    assert thumbs.first.get_attribute("src").startswith("data:image/png;base64,")
    assert page.evaluate("() => [...document.images].every(i => i.complete && i.naturalWidth === 8)")
    axe_check(page)
    shot(page, "dataset-thumbnails")


def test_register_a_run_and_move_an_alias(ui, world, trained_job, signed_in, axe_check, shot):
    project = world["project"]
    page = signed_in(world["editor"]["token"])
    page.goto(f"/ui/p/{project}/models")
    axe_check(page)
    shot(page, "models")
    page.select_option("#reg-run", str(trained_job["run"]["id"]))
    page.fill("#reg-name", "iris-mlp")
    page.click("form[action$='/models/register'] button[type=submit]")
    page.wait_for_url(re.compile(r"/models/iris-mlp$"))
    page.fill("#alias-name", "production")
    page.select_option("#alias-version", "1")
    page.click("form[action$='/aliases'] button[type=submit]")
    page.wait_for_selector("#aliases td:text('production')")
    assert ui.client().model(project, "iris-mlp")["aliases"][0]["version"] == 1
    history = page.inner_text("#history")
    assert "model.alias.set" in history and "model.version.create" in history
    axe_check(page)
    shot(page, "model")


def test_a_viewer_sees_no_button_that_would_fail_and_not_another_project(ui, world, trained_job, signed_in):
    page = signed_in(world["viewer"]["token"])
    project = world["project"]
    page.goto("/ui/")
    assert page.locator("#project-switch option").all_inner_texts() == ["Choose a project", project]
    assert world["other"] not in page.inner_text("body")
    for path in ("datasets", "jobs", "models", "deployments", "usage"):
        page.goto(f"/ui/p/{project}/{path}")
        posts = page.locator("main form[method=post]")
        assert posts.count() == 0, f"{path}: a viewer sees {posts.count()} forms that would be refused"
        assert page.locator("#upload").count() == 0
    assert page.locator("a:text('New experiment')").count() == 0
    response = page.goto(f"/ui/p/{world['other']}/datasets")
    assert response.status == 404 and "no project named" in page.inner_text("main")
    response = page.goto(f"/ui/p/{project}/new")
    assert response.status == 403


def test_jobs_table_filters_sorts_retries_and_cancels(ui, world, trained_job, signed_in, axe_check):
    project, done = world["project"], trained_job["job"]
    page = signed_in(world["editor"]["token"])
    page.goto(f"/ui/p/{project}/jobs?state=succeeded&sort=cost&order=asc")
    states = page.locator("#jobs-table tbody td:nth-child(3)").all_inner_texts()
    assert states and all(s.startswith("succeeded") for s in states)
    row = page.locator(f"tr[data-job='{done['id']}']")
    assert f"run {trained_job['run']['id']}" in row.inner_text() and "epoch 3/3" in row.inner_text()
    assert "accuracy" in row.inner_text()
    axe_check(page)
    row.locator("button:text('Retry')").click()
    page.wait_for_url(re.compile(rf"/ui/p/{project}/jobs$"))
    retried = max(j["id"] for j in ui.client().jobs(project)["items"])
    assert retried > done["id"] and ui.client().job(project, retried)["config"] == done["config"]
    long = ui.client().submit_job(project, "train", LONGER)  # minutes of training: still going when cancelled
    page.reload()
    page.locator(f"tr[data-job='{long['id']}'] button:text('Cancel')").click()
    page.wait_for_url(re.compile(rf"/ui/p/{project}/jobs$"))
    job = ui.client().job(project, long["id"])
    assert job["state"] == "cancelled" or job["cancel_requested"]
