"""The engine's verbs with ``--remote``: the same command line queues a job on a real server
(127.0.0.1), follows its log from a real worker process, and ends with the job's outcome."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from modelworks.cli import app

from ..fixtures.jobs import TINY, Workers


@pytest.fixture(scope="module")
def remote(jp):  # noqa: F811
    name = f"p-{uuid.uuid4().hex[:6]}"
    jp.client().create_project(name)
    editor, token = jp.new_user("editor")
    jp.client().set_member(name, editor, "editor")
    workers = Workers(jp.settings)
    workers.start()
    yield {"url": jp.url, "project": name, "token": token, "client": jp.client(token)}
    workers.stop_all()


def invoke(args: list[str], remote: dict, *, with_project: bool = True):
    env = {"MODELWORKS_TOKEN": remote["token"], **({"MODELWORKS_PROJECT": remote["project"]} if with_project else {})}
    return CliRunner().invoke(app, [*args, "--remote", "--url", remote["url"]], env=env)


def test_train_then_evaluate_remotely_follows_the_job(remote, tmp_path: Path):
    exp = tmp_path / "exp.yaml"
    exp.write_text(yaml.safe_dump(TINY), encoding="utf-8")
    out = invoke(["train", str(exp), "--set", "train.epochs=2"], remote)
    assert out.exit_code == 0, out.output
    job_id = int(out.output.split("job ", 1)[1].split()[0])
    assert "epoch 2:" in out.output and f"job {job_id} succeeded" in out.output and "recorded" in out.output
    job = remote["client"].job(remote["project"], job_id)
    assert job["state"] == "succeeded" and job["config"]["train"]["epochs"] == 2  # --set reached the server
    out = invoke(["evaluate", str(job_id), "--split", "validation"], remote)
    assert out.exit_code == 0, out.output
    assert "succeeded: accuracy" in out.output
    out = invoke(["compress", str(job_id), "-m", "quantize-dynamic"], remote)
    assert out.exit_code == 0 and "succeeded" in out.output and "recorded" in out.output, out.output
    out = invoke(["export", str(job_id), "-f", "onnx"], remote)
    assert out.exit_code == 0 and "succeeded" in out.output, out.output
    exported = remote["client"].runs(remote["project"], limit=1)["items"][0]
    files = {a["path"] for a in remote["client"].run(remote["project"], exported["id"])["artifacts"]}
    assert "export/onnx/model.onnx" in files
    common = ["--url", remote["url"], "--project", remote["project"], "--token", remote["token"]]
    listed = CliRunner().invoke(app, ["remote", "jobs", *common])
    assert listed.exit_code == 0 and f"job {job_id}  train  succeeded" in listed.output
    logs = CliRunner().invoke(app, ["remote", "logs", str(job_id), *common])
    assert logs.exit_code == 0 and "epoch 1:" in logs.output


def test_no_wait_queues_and_returns(remote, tmp_path: Path):
    exp = tmp_path / "exp.yaml"
    exp.write_text(yaml.safe_dump(TINY), encoding="utf-8")
    out = invoke(["train", str(exp), "--no-wait"], remote)
    assert out.exit_code == 0 and "queued" in out.output and "remote logs" in out.output


def test_json_is_one_document_on_stdout(remote, tmp_path: Path):
    exp = tmp_path / "exp.yaml"
    exp.write_text(yaml.safe_dump(TINY), encoding="utf-8")
    out = invoke(["train", str(exp), "--no-wait", "--json"], remote)
    assert out.exit_code == 0, out.output
    queued = json.loads(out.stdout)["job"]  # the "queued" line went to stderr
    assert queued["kind"] == "train" and queued["config"]["train"]["epochs"] == TINY["train"]["epochs"]
    common = ["--url", remote["url"], "--project", remote["project"], "--token", remote["token"]]
    listed = json.loads(CliRunner().invoke(app, ["remote", "jobs", "--json", *common]).stdout)
    assert queued["id"] in {j["id"] for j in listed["items"]} and listed["total"] >= 1
    runs = json.loads(CliRunner().invoke(app, ["remote", "runs", "--json", *common]).stdout)
    assert set(runs) == {"items", "total", "limit", "offset"}


@pytest.mark.parametrize(
    "args, message",
    [
        (["evaluate", "runs/x"], "RUN is the id of a job on the server"),
        (["evaluate", "1", "--cv", "3"], "--data and --cv are for local runs"),
        (["train", "EXP", "--resume", "runs/x"], "--resume is for local runs"),
        (["export", "1", "-f", "onnx", "-o", "out"], "--output is for local runs"),
        (["compress", "999999", "-m", "prune"], "999999"),  # checked by the server: no such job
        (["train", "EXP", "--set", "model.hiden=[4]"], "model.hiden"),  # checked by the server: 422
    ],
)
def test_remote_mistakes_are_one_clear_message(remote, tmp_path: Path, args: list[str], message: str):
    exp = tmp_path / "exp.yaml"
    exp.write_text(yaml.safe_dump(TINY), encoding="utf-8")
    out = invoke([str(exp) if a == "EXP" else a for a in args], remote)
    assert out.exit_code == 2 and message in out.output and "Traceback" not in out.output


def test_remote_needs_a_project(remote, tmp_path: Path):
    exp = tmp_path / "exp.yaml"
    exp.write_text(yaml.safe_dump(TINY), encoding="utf-8")
    out = invoke(["train", str(exp)], remote, with_project=False)
    assert out.exit_code == 2 and "--remote needs a project" in out.output


# A second full remote job: the remote flow itself runs by default (test_train_then_evaluate_remotely_follows_the_job).
@pytest.mark.slow
def test_a_failed_job_fails_the_command(remote, tmp_path: Path):
    exp = tmp_path / "exp.yaml"
    broken = dict(TINY, data={**TINY["data"], "target": "no_such_column"})
    exp.write_text(yaml.safe_dump(broken), encoding="utf-8")
    out = invoke(["train", str(exp)], remote)
    assert out.exit_code == 2 and "failed" in out.output and "no_such_column" in out.output


def test_upload_and_list_datasets(remote, tmp_path: Path):
    data = tmp_path / "表格.csv"
    data.write_bytes("\ufeff文本,label\r\n你好,a\r\nhello,b\r\n".encode("utf-8"))
    common = ["--url", remote["url"], "--project", remote["project"], "--token", remote["token"]]
    out = CliRunner().invoke(app, ["remote", "upload", "greetings", str(data), *common])
    assert (
        out.exit_code == 0
        and "dataset greetings version 1: 2 rows" in out.output
        and "dataset:greetings@1" in out.output
    ), out.output
    out = CliRunner().invoke(app, ["remote", "datasets", *common])
    assert out.exit_code == 0 and "greetings  1 version, latest 1" in out.output
    out = CliRunner().invoke(app, ["remote", "upload", "greetings", str(tmp_path / "missing.csv"), *common])
    assert out.exit_code == 2 and "is not a file" in out.output
