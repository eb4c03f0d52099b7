"""Deployments and usage in the browser: deploy a registered model's alias, try it against a real
serving process (in this process, on the port the platform's settings name), see its traffic and
the charge per caller, issue an inference key (shown once)."""

from __future__ import annotations

import json
import re
import socket
import threading
import time
from collections.abc import Iterator

import pytest
import uvicorn

ROW = {"sepal length (cm)": 5.1, "sepal width (cm)": 3.5, "petal length (cm)": 1.4, "petal width (cm)": 0.2}


@pytest.fixture(scope="module")
def serving(ui) -> Iterator[str]:
    """The platform's serving process (its app, polling fast) on ``ui.settings.serving_port``."""
    from modelworks.serve.platform import PlatformServing

    app = PlatformServing(ui.settings, replica="ui-test", poll_s=0.2, flush_s=0.3, retire_after_s=1.0).build_app()
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((ui.settings.serving_host, ui.settings.serving_port))
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", timeout_graceful_shutdown=5))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 60
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "the serving process did not start"
        time.sleep(0.01)
    yield f"http://{ui.settings.serving_host}:{ui.settings.serving_port}"
    server.should_exit = True
    thread.join(timeout=30)
    sock.close()


def test_deploy_try_and_see_usage(ui, world, trained_job, serving, signed_in, axe_check, shot):
    project = world["project"]
    admin = ui.client()
    admin.register_model(project, trained_job["run"]["id"], "iris-served")
    admin.set_alias(project, "iris-served", "production", 1)
    page = signed_in(world["editor"]["token"])
    page.goto(f"/ui/p/{project}/deployments")
    shot(page, "deployments")
    page.fill("#dep-name", "web")
    page.select_option("#dep-model", "iris-served")
    page.click("form[action$='/deployments'] button[type=submit]")
    page.wait_for_url(re.compile(r"/deployments/web$"))
    assert "v1" in page.inner_text("dl.facts")
    page.fill("#instances", json.dumps([ROW]))
    for _ in range(100):  # the serving process picks the deployment up within its poll interval
        page.click("form[action$='/try'] button[type=submit]")
        page.wait_for_selector("#answer, p.error[role=alert]")
        if page.locator("#answer").count() and '"predictions"' in page.inner_text("#answer"):
            break
    answer = json.loads(page.inner_text("#answer"))
    assert answer["predictions"][0]["prediction"] in {"setosa", "versicolor", "virginica"}
    shot(page, "deployment")

    page.goto(f"/ui/p/{project}/usage")
    axe_check(page)
    for _ in range(50):  # the meter flushes its counts to the database every 0.3 s
        if page.locator("#per-caller").count() and world["editor"]["name"] in page.inner_text("#per-caller"):
            break
        page.wait_for_timeout(200)
        page.reload()
    assert world["editor"]["name"] in page.inner_text("#per-caller")
    assert page.locator("#per-job tr").count() >= 2
    shot(page, "usage")

    page.goto(f"/ui/p/{project}/deployments/web")
    assert page.locator("#traffic-chart canvas").count() == 1  # uPlot drew the traffic
    assert page.locator("#latency-chart canvas").count() == 1  # and, beside it, p50/p99 from the histograms
    p50, p99 = (float(t) for t in page.locator("#traffic tbody tr").last.locator("td").all_inner_texts()[3:5])
    assert 0 < p50 <= p99 and "p99" in page.inner_text("#latency-note")
    shot(page, "deployment-latency")
    axe_check(page)
    page.goto(f"/ui/p/{project}/deployments")
    page.fill("#key-name", "客户甲")
    page.click("form[action$='/keys'] button[type=submit]")
    key = page.inner_text("#new-key")
    assert key.startswith("mwk_") and "客户甲" in page.inner_text("#keys")
    axe_check(page)
    page.reload()
    assert key not in page.content()  # shown once
