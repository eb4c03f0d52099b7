"""Issue 9, finding 9: the OpenAPI document tells the truth, checked the way a client generator
would trust it — schemathesis, with every check it has, against the real server on 127.0.0.1.

Every operation the document lists is called with generated requests (positive and negative,
the coverage phase's boundary and wrong-method cases, then fuzzing), authenticated as the admin,
in a project that holds a dataset, a run, a registered model version with an alias, a deployment
of it and a job, so that most requests get past authorization to the route's own logic. Two passes: ``named``
points every path parameter at something that exists (the success answers: downloads, reads,
changes), ``free`` leaves all but the project to the generator (what a route says about names
and ids that do not exist or are not valid).

Exempted, each for one check on one operation and why (`EXEMPT`); nothing else is left out.
"""

from __future__ import annotations

import shutil
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from modelworks.data.builtins import BUILTINS
from modelworks.platform.db import make_engine, session_factory
from modelworks.platform.db.models import Project
from modelworks.platform.runs import publish_run, record_run
from modelworks.platform.storage import Storage
from modelworks.store import files

schemathesis = pytest.importorskip("schemathesis", minversion="4", reason="the dev extra installs schemathesis")
from schemathesis.checks import CHECKS, load_all_checks  # noqa: E402
from schemathesis.config import SchemathesisConfig  # noqa: E402
from schemathesis.engine import Status, events, from_schema  # noqa: E402

SEED = 9
MAX_EXAMPLES = 5  # per operation and pass, in the fuzzing phase; the coverage phase adds its own boundary cases
JOB = {
    "data": {"source": "builtin:iris"},
    "model": {"type": "mlp", "hidden": [4]},
    "train": {"epochs": 1, "device": "cpu"},
}
RESPONSE_CHECKS = {
    "not_a_server_error",
    "status_code_conformance",
    "content_type_conformance",
    "response_headers_conformance",
    "response_schema_conformance",
    "negative_data_rejection",
    "positive_data_acceptance",
}
# All of schemathesis 4's checks: `schemathesis run --checks all`.
ALL_CHECKS = RESPONSE_CHECKS | {
    "missing_required_header",
    "unsupported_method",
    "allow_header_conformance",
    "use_after_free",
    "ensure_resource_availability",
    "ignored_auth",
    "object_level_authorization",
}

# One check left out on one operation, each because the document cannot say what it checks.
EXEMPT = {
    # A job's config is read by the engine's config models and checked against the project's data
    # (datasets, parent jobs); the document describes it as an object, so a schema-valid config
    # can still be refused (422, naming the key).
    ("POST /api/v1/projects/{project}/jobs", "positive_data_acceptance"),
    # The upload is a file: whether its bytes parse as the format named is known only by reading
    # them (400, naming the file).
    ("POST /api/v1/projects/{project}/datasets/{name}/versions", "positive_data_acceptance"),
    # Appended rows are checked against the dataset's own schema (its columns and their types), a
    # fact of the stored data that the document cannot state (422, naming the row and column).
    ("POST /api/v1/projects/{project}/datasets/{name}/rows", "positive_data_acceptance"),
    # Feedback names a request id the deployment logged and a label of the type its model predicts:
    # facts of the log, not of the document (422, naming the request and why).
    ("POST /api/v1/projects/{project}/deployments/{name}/feedback", "positive_data_acceptance"),
    # An expiry must lie in the future, a bound that moves with the clock: JSON Schema has no "now".
    ("POST /api/v1/tokens", "positive_data_acceptance"),
    # The same for an inference key's expiry (a schema-valid time that has passed, or passes in flight: 422).
    ("POST /api/v1/projects/{project}/inference-keys", "positive_data_acceptance"),
    # A version registered from a built-in has no file to download: a fact of the version, not of
    # the request (400, "is a built-in", as tests/server/test_datasets.py pins it).
    ("GET /api/v1/projects/{project}/datasets/{name}/versions/{version}/download", "positive_data_acceptance"),
    # A continual policy names a model, its alias and a dataset of the project: a schema-valid name
    # of one that does not exist is refused (404, naming it), a taken policy name too (409).
    ("POST /api/v1/projects/{project}/continual/policies", "positive_data_acceptance"),
}


def _record_run(platform, project: str, folder: Path) -> int:
    """Record ``folder`` as a run of ``project``, as a finished job would."""
    storage = Storage(platform.settings.artifacts)
    engine = make_engine(platform.settings.database_url)
    try:
        with session_factory(engine)() as session:
            pid = session.scalar(select(Project.id).where(Project.name == project))
            key = f"{pid}/runs/{uuid.uuid4().hex[:8]}"
            copy = storage.local_path(key)
            shutil.copytree(folder, copy)
            run = record_run(session, pid, copy, key, publish_run(storage, copy, key))
            session.commit()
            return run.id
    finally:
        engine.dispose()


@pytest.fixture(scope="module")
def world(platform, tmp_path_factory) -> dict[str, Any]:
    """Two projects alike: ``fuzz`` for everything, ``scratch`` for what deletes (so the rest
    keeps its data); each with a dataset ``data`` (version 1), a run (no weights: a config and
    a note) registered as version 1 of model ``data`` with alias ``live``, a deployment ``data``
    following it, a queued job, and a viewer ``someone``. Also a user whose tokens the fuzzer may
    revoke."""
    admin = platform.client()
    folder = tmp_path_factory.mktemp("run")
    (folder / files.CONFIG).write_text("data: {source: 'builtin:iris'}\n")
    (folder / "notes.txt").write_text("a run without weights\n")
    someone = f"someone-{uuid.uuid4().hex[:6]}"
    admin.create_user(someone)
    ids = {}
    for project in ("fuzz", "scratch"):
        admin.create_project(project)
        admin.upload_dataset(project, "data", b"x,y\n1,2\n3,4\n", filename="data.csv")
        run_id = _record_run(platform, project, folder)
        admin.register_model(project, run_id, "data")
        admin.set_alias(project, "data", "live", 1)
        admin.deploy(project, "data", "data", alias="live")
        ids[project] = {"run_id": run_id, "job_id": admin.submit_job(project, "train", JOB)["id"]}
        admin.set_member(project, someone, "viewer")
    _, revoker = platform.new_user("revoker")
    return {"someone": someone, "ids": ids, "revoker": revoker}


def _config(platform, world: dict[str, Any], *, named: bool) -> SchemathesisConfig:
    def path_values(project: str) -> dict[str, Any]:
        values = {"path.project": project}
        if named:
            values |= {
                "path.name": "data",
                "path.version": 1,
                "path.alias": "live",
                "path.user": world["someone"],
                "path.path": "notes.txt",
                **{f"path.{k}": v for k, v in world["ids"][project].items()},
            }
        return values

    operations = [{"include-name": name, "checks": {check: {"enabled": False}}} for name, check in sorted(EXEMPT)]
    operations += [
        # What deletes works on the scratch project, and tokens are revoked as a user of their own:
        # the fuzzer reuses ids it has seen in answers, the admin's token among them.
        {"include-method": "DELETE", "parameters": path_values("scratch")},
        {
            "include-name": "DELETE /api/v1/tokens/{token_id}",
            "headers": {"Authorization": f"Bearer {world['revoker']}"},
        },
    ]
    return SchemathesisConfig.from_dict(
        {
            "seed": SEED,
            "workers": 1,
            "headers": {"Authorization": f"Bearer {platform.admin_token}"},
            "checks": {name: {"enabled": True} for name in sorted(ALL_CHECKS)},
            "phases": {name: {"enabled": True} for name in ("examples", "coverage", "fuzzing", "stateful")},
            "generation": {"max-examples": MAX_EXAMPLES, "deterministic": True, "database": "none"},
            "parameters": path_values("fuzz"),
            "operations": operations,
        }
    )


HEAVY_BUILTINS = {e.name for e in BUILTINS if "debian_package" in e.meta}


def light_builtins(context, case, kwargs) -> None:
    """A ``before_call`` hook: the built-ins that Debian packages hold (fashion-mnist: 70,000
    images) take longer to register than a request may wait; a scikit-learn one stands in."""
    body = case.body
    if isinstance(body, dict) and isinstance(body.get("builtin"), str) and body["builtin"] in HEAVY_BUILTINS:
        case.body = {**body, "builtin": "iris"}


@pytest.fixture(scope="module")
def hooks():
    schemathesis.hook("before_call")(light_builtins)  # schemathesis keeps before_call hooks globally
    yield
    schemathesis.hooks.unregister(light_builtins)


@dataclass
class Fuzzed:
    problems: list[str] = field(default_factory=list)  # one per failure, with a curl command to reproduce it
    operations: set[str] = field(default_factory=set)  # the operations tested
    checks: set[str] = field(default_factory=set)  # the checks that ran
    cases: int = 0  # the requests generated


def fuzz(schema) -> Fuzzed:
    """Run schemathesis' engine (what ``schemathesis run`` runs) over ``schema``."""
    out = Fuzzed()
    for event in from_schema(schema).execute():
        if isinstance(event, (events.NonFatalError, events.FatalError)):
            error = getattr(event, "value", None) or getattr(event, "exception", None)
            out.problems.append(f"{getattr(event, 'label', 'the engine')}: {type(error).__name__}: {error}")
        if not isinstance(event, events.ScenarioFinished) or event.status == Status.SKIP:
            continue
        if event.label is not None:  # a stateful scenario spans operations and has no label
            out.operations.add(event.label)
        out.cases += len(event.recorder.cases)
        for check in (check for checks in event.recorder.checks.values() for check in checks):
            out.checks.add(check.name)
            if check.status == Status.FAILURE and check.failure_info is not None:
                failure = check.failure_info.failure
                out.problems.append(
                    f"{event.label} [{event.phase.value}] {check.name}: {failure.title}\n"
                    f"    {failure.message.strip()}\n    {check.failure_info.code_sample}"
                )
    out.problems = sorted(set(out.problems))
    return out


# --- what the document declares, checked directly (fast; each failed on main) -----------------

SQLITE = pytest.mark.parametrize("platform", ["sqlite"], indirect=True)


def operations(doc: dict[str, Any]):
    for path, ops in doc["paths"].items():
        for method, op in ops.items():
            yield f"{method.upper()} {path}", op


@SQLITE
def test_f9_every_error_answer_has_the_error_body_and_its_headers(platform):
    doc = platform.http().get("/openapi.json").json()
    assert "HTTPValidationError" not in doc["components"]["schemas"]
    error_body = {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorBody"}}}
    for label, op in operations(doc):
        for status, response in op["responses"].items():
            if int(status) >= 400:
                assert response["content"] == error_body, (label, status)
        if label.startswith("GET /health"):
            continue
        assert {"401", "429"} <= set(op["responses"]), label
        assert "WWW-Authenticate" in op["responses"]["401"]["headers"], label
        assert "Retry-After" in op["responses"]["429"]["headers"], label
        if "{project}" in label:
            assert "404" in op["responses"], label
        if "requestBody" in op:
            assert {"400", "408", "413", "422"} <= set(op["responses"]), label
    error = doc["components"]["schemas"]["ErrorBody"]
    assert error["required"] == ["error"]


@SQLITE
def test_f9_refusals_are_declared_where_they_happen(platform):
    ops = dict(operations(platform.http().get("/openapi.json").json()))
    assert "403" in ops["GET /api/v1/users"]["responses"]  # admins only
    assert "403" in ops["DELETE /api/v1/projects/{project}"]["responses"]  # owners only
    assert "403" not in ops["GET /api/v1/projects/{project}"]["responses"]  # any member may read
    assert "409" in ops["POST /api/v1/projects"]["responses"] and "409" not in ops["GET /api/v1/projects"]["responses"]


@SQLITE
def test_f9_downloads_are_declared_as_bytes_with_their_headers(platform):
    ops = dict(operations(platform.http().get("/openapi.json").json()))
    downloads = [label for label in ops if label.endswith("/download") or "/artifacts/" in label]
    assert len(downloads) == 3, downloads
    for label in downloads:
        ok = ops[label]["responses"]["200"]
        assert ok["content"] == {"application/octet-stream": {"schema": {"type": "string", "format": "binary"}}}, label
        assert {"Content-Length", "Content-Disposition", "X-Content-SHA256"} <= set(ok["headers"]), label
        assert "500" in ops[label]["responses"], label  # a stored file that fails its integrity check
    upload = ops["POST /api/v1/projects/{project}/datasets/{name}/versions"]
    assert set(upload["requestBody"]["content"]) == {"application/octet-stream"}


@SQLITE
def test_f9_a_wrong_method_answers_405_allowing_every_method_of_the_path(platform, world):
    http = platform.http(platform.admin_token)
    for path, allowed in [
        ("/api/v1/projects/fuzz", "DELETE, GET"),
        ("/api/v1/projects", "GET, POST"),
        ("/api/v1/projects/fuzz/models/data/aliases/live", "DELETE, GET, PUT"),
    ]:
        r = http.request("OPTIONS", path)
        assert r.status_code == 405 and r.headers["allow"] == allowed, (path, r.headers.get("allow"))
        assert r.json()["error"]["code"] == "method_not_allowed"


@SQLITE
def test_f9_an_upload_that_is_not_utf8_is_a_400_not_a_500(platform, world):
    # Found by the fuzzing below: a JSON Lines upload of binary bytes was a 500 (UnicodeDecodeError).
    http = platform.http(platform.admin_token)
    for filename in ("junk.jsonl", "junk.csv"):
        r = http.post(
            "/api/v1/projects/fuzz/datasets/junk/versions",
            params={"filename": filename},
            content=b"\x89PNG\r\n\x1a\n\x00\xff",
        )
        assert r.status_code == 400 and "not UTF-8" in r.json()["error"]["message"], r.text


@SQLITE
def test_f9_names_in_paths_follow_the_name_rule(platform, world):
    # Found by the fuzzing below: an invalid name in a path was a 400 from the service, which the
    # document did not say; the rule is now part of the document, and FastAPI applies it (422).
    http = platform.http(platform.admin_token)
    for method, path in [
        ("GET", "/api/v1/projects/fuzz/datasets/Bad Name"),
        ("POST", "/api/v1/projects/fuzz/models/UP/versions"),
        ("GET", "/api/v1/projects/fuzz/models/data/aliases/a%00b"),
    ]:
        r = http.request(method, path, json={"run_id": 1} if method == "POST" else None)
        assert r.status_code == 422 and r.json()["error"]["code"] == "validation_error", (path, r.text)
    assert http.get("/api/v1/projects/fuzz/jobs", params={"state": "sleeping"}).status_code == 422


@SQLITE
def test_f9_serving_requests_follow_their_schemas(platform, world):
    # Found by the fuzzing below: a deployment with both or neither of alias and version was a 400
    # the document did not foresee, ``until=0`` was read as a Unix time, ``false`` as a percent.
    http = platform.http(platform.admin_token)
    deployments = "/api/v1/projects/fuzz/deployments"
    for body in (
        {"name": "d", "model": "data"},
        {"name": "d", "model": "data", "alias": "live", "version": 1},
        {"name": "d", "model": "data", "alias": None, "version": None},
    ):
        r = http.post(deployments, json=body)
        assert r.status_code == 422 and "exactly one" in r.json()["error"]["message"], (body, r.text)
    for body in ({"alias": "live", "version": 1}, {"alias": None}, {"canary_percent": False}):
        assert http.patch(f"{deployments}/data", json=body).status_code == 422, body
    assert http.get(f"{deployments}/Bad Name").status_code == 422
    for until in ("0", "1700000000", "2026-1-1"):
        assert http.get("/api/v1/projects/fuzz/inference-usage", params={"until": until}).status_code == 422, until
    assert http.get("/api/v1/projects/fuzz/inference-usage", params={"until": "2026-01-01"}).status_code == 200
    doc = http.get("/openapi.json").json()
    create = doc["paths"]["/api/v1/projects/{project}/deployments"]["post"]["requestBody"]["content"]
    assert len(create["application/json"]["schema"]["oneOf"]) == 2


# --- schemathesis ------------------------------------------------------------------------------


def test_f9_every_check_is_on():
    load_all_checks()
    assert set(ALL_CHECKS) == set(CHECKS.get_all_names()), "schemathesis has checks this test does not turn on"


@pytest.mark.parametrize("platform", ["sqlite", pytest.param("postgresql", marks=pytest.mark.slow)], indirect=True)
@pytest.mark.parametrize("named", [True, False], ids=["named", "free"])
def test_f9_the_document_holds_under_fuzzing(platform, world, hooks, named):
    schema = schemathesis.openapi.from_url(f"{platform.url}/openapi.json", config=_config(platform, world, named=named))
    run = fuzz(schema)
    assert not run.problems, f"{len(run.problems)} failures:\n" + "\n".join(run.problems)
    documented = {f"{method.upper()} {path}" for path, ops in schema.raw_schema["paths"].items() for method in ops}
    assert run.operations == documented, documented ^ run.operations
    assert run.cases >= 5 * len(documented), run.cases
    # The checks that judge every answer ran; the rest apply to some answers only (a wrong method,
    # a missing header, a deleted resource) and ran where those came up.
    assert RESPONSE_CHECKS <= run.checks, RESPONSE_CHECKS - run.checks
