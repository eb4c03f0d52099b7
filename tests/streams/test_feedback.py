"""Feedback from serving over real HTTP: a deployment that opted in logs its /predict rows (and its
OIP /infer rows, rebuilt from their tensors) sealed with the data key and answers with a
Request-Id; feedback for an unknown id is a 422, a label of the wrong type a 422, a second label a
409; labelled rows join their inputs into a new version of the deployment's dataset, once
``window_rows`` are labelled or the oldest has waited ``max_age_s``."""

from __future__ import annotations

import base64
import json
import time
import uuid
from datetime import timedelta

import httpx
import pandas as pd
import pytest
from sqlalchemy import select

from modelworks import api
from modelworks.client import ApiError
from modelworks.jobs.policies import close_feedback_windows
from modelworks.platform.crypto import unseal
from modelworks.platform.db import make_engine, session_factory
from modelworks.platform.db.models import Project
from modelworks.platform.db.streams import LoggedRequest
from modelworks.platform.runs import publish_run, record_run
from modelworks.platform.storage import Storage
from modelworks.serve.platform import PlatformServing
from modelworks.streams import feedback
from modelworks.streams.feedback import REQUEST_ID_HEADER
from tests.fixtures.jobs import wait_for
from tests.fixtures.served import Served

TINY = {
    "data": {"source": "builtin:iris", "split": {"validation": 0.2, "test": 0.2, "seed": 1}},
    "model": {"type": "mlp", "hidden": [8]},
    "train": {"epochs": 2, "batch_size": 16, "device": "cpu", "progress": False},
    "evaluate": {"baselines": []},
}
ROWS = [
    {"sepal length (cm)": 5.1, "sepal width (cm)": 3.5, "petal length (cm)": 1.4, "petal width (cm)": 0.2},
    {"sepal length (cm)": 6.7, "sepal width (cm)": 3.0, "petal length (cm)": 5.2, "petal width (cm)": 2.3},
]


@pytest.fixture(scope="module")
def served(plat, tmp_path_factory):
    """Deployment ``web`` of a tiny iris model, logging its requests (a version per 2 labelled
    rows), answered by a serving process in this process."""
    client, settings = plat.client(), plat.settings
    project = f"f-{uuid.uuid4().hex[:6]}"
    client.create_project(project)
    run = api.train({**TINY, "runs_dir": str(tmp_path_factory.mktemp("feedback-runs"))})
    engine = make_engine(settings.database_url)
    with session_factory(engine)() as session:
        pid = session.scalar(select(Project.id).where(Project.name == project))
        key = f"{pid}/runs/tiny"
        run_id = record_run(session, pid, run.path, key, publish_run(Storage(settings.artifacts), run.path, key)).id
        session.commit()
    client.register_model(project, run_id, "iris")
    client.deploy(project, "web", "iris", version=1)
    client.deploy(project, "quiet", "iris", version=1)  # does not log
    assert client.set_request_log(project, "web", True, window_rows=2)["dataset"] == "web-feedback"
    serving = PlatformServing(settings, replica="feedback", poll_s=0.2)
    with Served(serving.build_app()) as server:
        http = httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {plat.admin_token}"}, timeout=30)
        deadline = time.monotonic() + 120
        while http.post(f"/v2/models/{project}.web/predict", json={"instances": ROWS[:1]}).status_code != 200:
            assert time.monotonic() < deadline, "the deployment did not come up"
            time.sleep(0.2)
        yield {"project": project, "http": http, "engine": engine, "run": run}
        http.close()
    engine.dispose()


def predict(served, deployment: str = "web") -> httpx.Response:
    answer = served["http"].post(f"/v2/models/{served['project']}.{deployment}/predict", json={"instances": ROWS})
    assert answer.status_code == 200, answer.text
    return answer


def test_unknown_request_ids_wrong_label_types_and_second_labels_are_refused(plat, served):
    client, project = plat.client(), served["project"]
    assert REQUEST_ID_HEADER not in predict(served, "quiet").headers  # not opted in: nothing logged
    request_id = predict(served).headers[REQUEST_ID_HEADER]
    with pytest.raises(ApiError) as unknown:
        client.feedback(project, "web", uuid.uuid4().hex, "setosa")
    assert unknown.value.status == 422 and "logged no request" in str(unknown.value)
    with pytest.raises(ApiError) as beyond:
        client.feedback(project, "web", request_id, "setosa", row=2)  # the request had rows 0 and 1
    assert beyond.value.status == 422
    for label, says in [(1, "must be text, like the model's classes"), ("tulip", "not one of the model's classes")]:
        with pytest.raises(ApiError) as wrong:
            client.feedback(project, "web", request_id, label)
        assert wrong.value.status == 422 and says in str(wrong.value), str(wrong.value)
    assert client.feedback(project, "web", request_id, "setosa")["pending"] >= 1
    with pytest.raises(ApiError) as twice:
        client.feedback(project, "web", request_id, "virginica")
    assert twice.value.status == 409
    flushed = client.flush_feedback(project, "web")  # the window closed early: the rows waiting are stored
    assert flushed["version"] is not None and flushed["pending"] == 0
    assert client.flush_feedback(project, "web")["version"] is None  # nothing waits


def test_labelled_rows_join_their_inputs_in_a_new_version_and_are_sealed_at_rest(plat, served, tmp_path):
    client, project = plat.client(), served["project"]
    request_id = predict(served).headers[REQUEST_ID_HEADER]
    pending = client.request_log(project, "web")["pending"]  # labelled by other tests, waiting for their window
    client.set_request_log(project, "web", True, window_rows=pending + 2)
    first = client.feedback(project, "web", request_id, "virginica", row=1)
    assert (first["version"], first["pending"]) == (None, pending + 1)
    second = client.feedback(project, "web", request_id, "setosa", row=0)
    assert second["version"] is not None and second["pending"] == 0
    version = client.dataset_version(project, "web-feedback", second["version"])
    assert version["encrypted"]
    frame = pd.read_json(client.download_dataset(project, "web-feedback", second["version"], tmp_path / "f.jsonl"),
                         lines=True)  # fmt: skip
    tail = frame.tail(2).to_dict("records")
    assert tail == [{**ROWS[1], "label": "virginica"}, {**ROWS[0], "label": "setosa"}]
    window = client.dataset_windows(project, "web-feedback")["items"][0]
    assert (window["origin"], window["source_key"]) == ("feedback", "deployment:web")
    assert (window["rows_appended"], window["last_offset"]) == (pending + 2, f"{request_id}:0")
    with session_factory(served["engine"])() as session:
        logged = session.scalars(select(LoggedRequest).where(LoggedRequest.request_id == request_id)).all()
    assert len(logged) == 2 and all(b"sepal" not in base64.b64decode(row.sealed) for row in logged)
    keyring = plat.app.state.datastore.keyring
    assert b"sepal" in unseal(base64.b64decode(logged[0].sealed), keyring)


def test_a_window_closes_once_its_oldest_label_has_waited_max_age(plat, served):
    client, project = plat.client(), served["project"]
    client.flush_feedback(project, "web")  # what other tests left waiting
    assert client.set_request_log(project, "web", True, window_rows=1000, max_age_s=3600)["max_age_s"] == 3600
    request_id = predict(served).headers[REQUEST_ID_HEADER]
    assert client.feedback(project, "web", request_id, "setosa")["version"] is None  # 1 row of 1000
    store = plat.app.state.datastore
    with session_factory(served["engine"])() as session:
        query = select(LoggedRequest.labelled_at).where(LoggedRequest.request_id == request_id, LoggedRequest.row == 0)
        labelled_at = session.scalar(query)
        assert feedback.close_aged(session, store, labelled_at + timedelta(seconds=3599)) == []  # the clock, moved
        ((deployment, version),) = feedback.close_aged(session, store, labelled_at + timedelta(seconds=3600))
    assert deployment == "web" and client.request_log(project, "web")["pending"] == 0
    window = client.dataset_windows(project, "web-feedback")["items"][0]
    assert (window["version"], window["rows_appended"], window["last_offset"]) == (version, 1, f"{request_id}:0")

    # The workers' clock: a tiny max age, awaited by its outcome.
    client.set_request_log(project, "web", True, window_rows=1000, max_age_s=0.01)
    request_id = predict(served).headers[REQUEST_ID_HEADER]
    client.feedback(project, "web", request_id, "virginica", row=1)
    with session_factory(served["engine"])() as session:
        closed = wait_for(lambda: close_feedback_windows(session, plat.settings), 30, "the window to close")
    assert closed == [("web", version + 1)]
    with pytest.raises(ApiError) as bad:
        client.set_request_log(project, "web", True, max_age_s=0)
    assert bad.value.status == 422 and "max_age_s" in str(bad.value)


def test_infer_requests_are_logged_as_the_rows_their_tensors_were_built_from(plat, served, tmp_path):
    client, project, http = plat.client(), served["project"], served["http"]
    client.flush_feedback(project, "web")
    client.set_request_log(project, "web", True, window_rows=2)
    numeric = served["run"].preprocessor.transform(pd.DataFrame(ROWS), with_target=False)["numeric"].numpy()
    tensor = {"name": "numeric", "datatype": "FP32", "shape": list(numeric.shape), "data": numeric.ravel().tolist()}
    quiet = http.post(f"/v2/models/{project}.quiet/infer", json={"inputs": [tensor]})
    assert quiet.status_code == 200 and REQUEST_ID_HEADER not in quiet.headers  # not opted in: nothing logged
    answer = http.post(f"/v2/models/{project}.web/infer", json={"inputs": [tensor]})
    assert answer.status_code == 200, answer.text
    request_id = answer.headers[REQUEST_ID_HEADER]
    with pytest.raises(ApiError) as wrong:
        client.feedback(project, "web", request_id, "tulip")
    assert wrong.value.status == 422
    client.feedback(project, "web", request_id, "setosa", row=0)
    version = client.feedback(project, "web", request_id, "virginica", row=1)["version"]
    assert version is not None
    path = client.download_dataset(project, "web-feedback", version, tmp_path / "infer.jsonl")
    tail = pd.read_json(path, lines=True).tail(2).to_dict("records")
    assert tail == [{**ROWS[0], "label": "setosa"}, {**ROWS[1], "label": "virginica"}]  # float32 undone to 7 digits


def test_request_log_from_the_command_line(plat, served):
    from typer.testing import CliRunner

    from modelworks.cli import app

    common = ["--url", plat.url, "--token", plat.admin_token, "--project", served["project"]]
    shown = CliRunner().invoke(app, ["remote", "request-log", "quiet", *common])
    assert shown.exit_code == 0, shown.output
    assert "deployment quiet does not log its requests; labelled rows go to dataset quiet-feedback" in shown.output
    on = CliRunner().invoke(app, ["remote", "request-log", "quiet", "--on", "--window-rows", "5", "--max-age-s", "60",
                                  "--dataset", "quiet-labels", *common])  # fmt: skip
    assert on.exit_code == 0, on.output
    assert ("deployment quiet logs its requests; labelled rows go to dataset quiet-labels, a version per 5 of them "
            "or once the oldest has waited 60 s") in " ".join(on.output.split())  # fmt: skip
    off = CliRunner().invoke(app, ["remote", "request-log", "quiet", "--off", "--json", *common])
    assert off.exit_code == 0 and json.loads(off.output)["enabled"] is False
    assert json.loads(off.output)["window_rows"] == 5  # the other settings stay as they were
    missing = CliRunner().invoke(app, ["remote", "request-log", "nowhere", *common])
    assert missing.exit_code != 0 and "no deployment named 'nowhere'" in missing.output
