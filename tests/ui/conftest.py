"""The browser-test harness, shared by every tests/ui module: one real platform server (SQLite, on
127.0.0.1) and one headless Chromium (Debian's /usr/bin/chromium driven by Playwright; never a
downloaded browser) for the whole session.

* ``ui`` — the `Platform` (tests/fixtures/platform.py) the browser talks to.
* ``browser`` — the Playwright browser; the tests skip, saying why, when Playwright or Chromium is missing.
* ``signed_in(token)`` — a new page whose context holds a UI session for ``token`` (signed in over
  HTTP, no page load); the page records console errors, and CSP violations fail the test.
* ``shot(page, name)`` — a full-page screenshot under ``test-artifacts/ui/`` (or $MODELWORKS_TEST_ARTIFACTS).
* ``axe_check(page)`` — runs the vendored axe-core in the page; fails on serious or critical violations.
* ``world`` — a project with an editor and a viewer, and another project they cannot see.
* ``trained_job`` — a tiny train job of that project run to success by a real worker (with its run).
"""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from modelworks.client import Client
from modelworks.platform.bootstrap import prepare
from modelworks.platform.settings import Settings
from tests.fixtures.jobs import TINY, Workers, finished
from tests.fixtures.platform import LiveServer, Platform, free_port

CHROMIUM = os.environ.get("MODELWORKS_TEST_CHROMIUM", "/usr/bin/chromium")
AXE = Path(__file__).parent / "vendor" / "axe.min.js"
ARTIFACTS = Path(os.environ.get("MODELWORKS_TEST_ARTIFACTS", "test-artifacts")) / "ui"
BLOCKING = ("serious", "critical")


@pytest.fixture(scope="session")
def ui(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Platform]:
    """One platform server for every browser test (prices set, so costs show)."""
    home = tmp_path_factory.mktemp("ui")
    env = {
        "MODELWORKS_PRICE_CPU_HOUR": "3.6",
        "MODELWORKS_PRICE_GPU_HOUR": "36",
        "MODELWORKS_PRICE_1K_REQUESTS": "2",
        "MODELWORKS_AUTH_FAILURES": "1000",
        "MODELWORKS_SERVING_PORT": str(free_port()),  # where tests/ui/test_deployments.py serves
    }
    settings = Settings.from_env(env, home=home, database_url=f"sqlite:///{home / 'modelworks.db'}", port=0)
    token = prepare(settings)
    with LiveServer(settings) as server:
        p = Platform(server=server, settings=settings, backend="sqlite", admin_token=token)
        yield p
        p.close()


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.skip("playwright is not installed (pip install 'modelworks[ui-test]')")
    if not (Path(CHROMIUM).exists() or shutil.which(CHROMIUM)):
        pytest.skip(f"no Chromium at {CHROMIUM} (apt-get install chromium, or set MODELWORKS_TEST_CHROMIUM)")
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu"])
        yield browser
        browser.close()


@pytest.fixture
def signed_in(ui: Platform, browser: Any) -> Iterator[Callable[..., Any]]:
    """``signed_in(token=None, locale="en-US")``: a page with a UI session (default: the admin's)."""
    contexts = []

    def open_page(token: str | None = None, locale: str = "en-US") -> Any:
        context = browser.new_context(base_url=ui.url, locale=locale)
        contexts.append(context)
        if token is not False:
            answer = context.request.post("/ui/session", headers={"Authorization": f"Bearer {token or ui.admin_token}"})
            assert answer.ok, answer.text()
        page = context.new_page()
        page.set_default_timeout(60_000)  # a bound for a busy machine: tests wait on events, never sleep
        page.csp_violations = []
        page.on("console", lambda m: "Content Security Policy" in m.text and page.csp_violations.append(m.text))
        return page

    yield open_page
    for context in contexts:
        for page in context.pages:
            assert not page.csp_violations, page.csp_violations
        context.close()


@pytest.fixture(scope="session")
def shot() -> Callable[[Any, str], Path]:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)

    def take(page: Any, name: str) -> Path:
        path = ARTIFACTS / f"{name}.png"
        page.screenshot(path=str(path), full_page=True)
        return path

    return take


@pytest.fixture(scope="session")
def axe_check() -> Callable[[Any], list[dict]]:
    source = AXE.read_text(encoding="utf-8")

    def check(page: Any) -> list[dict]:
        """Run axe-core on the page as it is; fail on any serious or critical violation."""
        if not page.evaluate("() => typeof window.axe !== 'undefined'"):
            page.evaluate(source)  # through the DevTools protocol: the page's CSP allows no inline script
        result = page.evaluate("() => axe.run(document, {resultTypes: ['violations']})")
        bad = [v for v in result["violations"] if v["impact"] in BLOCKING]
        summary = [(v["id"], v["impact"], [n["target"] for n in v["nodes"]][:3]) for v in bad]
        assert not bad, f"axe: {summary}"
        return result["violations"]

    return check


@pytest.fixture(scope="session")
def world(ui: Platform) -> dict[str, Any]:
    """Two projects and three users: ``project`` (admin owns it; ``editor`` and ``viewer`` are
    members with those roles) and ``other`` (owned by ``outsider``, which nobody else joins)."""
    suffix = uuid.uuid4().hex[:6]
    admin = ui.client()
    project, other = f"lab-{suffix}", f"other-{suffix}"
    admin.create_project(project, description="项目：图像分类")
    users = {}
    for role in ("editor", "viewer", "outsider"):
        name, token = ui.new_user(role)
        users[role] = {"name": name, "token": token}
        if role != "outsider":
            admin.set_member(project, name, role)
    ui.client(users["outsider"]["token"]).create_project(other)
    return {"project": project, "other": other, **users}


@pytest.fixture(scope="session")
def trained_job(ui: Platform, world: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """A tiny train job (iris, 3 epochs) of ``world["project"]``, run to success by a real worker;
    the worker keeps running for the session (it picks up jobs the tests submit)."""
    workers = Workers(ui.settings)
    workers.start()
    # The server's first submission imports the job check's libraries (torch): slow on a busy machine.
    patient = Client(ui.url, ui.admin_token, timeout=300)
    try:
        job = patient.submit_job(world["project"], "train", TINY)
        done = finished(ui.client(), world["project"], job["id"], timeout=300)
        assert done["state"] == "succeeded", done
        run = ui.client().runs(world["project"], job=job["id"])["items"][0]
        yield {"job": done, "run": run}
    finally:
        patient.close()
        workers.stop_all()
