"""Appending rows to a dataset over real HTTP: each append is a new immutable, encrypted version
holding the previous rows and the new ones; bad rows are one clear 4xx naming the column and row."""

from __future__ import annotations

import io

import pandas as pd
import pytest

from modelworks.client import ApiError

from .conftest import MAX_UPLOAD_MB

CSV = "x,colour,label\n1.5,red,cat\n2.5,blue,dog\n"


def download(plat, project: str, name: str, version: int, tmp_path) -> pd.DataFrame:
    path = plat.client().download_dataset(project, name, version, tmp_path / f"{name}-{version}")
    return pd.read_csv(path) if path.read_bytes()[:1] != b"{" else pd.read_json(path, lines=True)


def test_append_json_rows_makes_a_new_encrypted_version_with_every_row(plat, project, tmp_path):
    client = plat.client()
    client.upload_dataset(project, "clicks", CSV.encode(), filename="clicks.csv")
    added = client.append_rows(project, "clicks", [{"x": 3, "colour": "红", "label": "cat"},
                                                   {"x": None, "colour": "red", "label": "fox"}])  # fmt: skip
    assert added["version"] == 2 and added["rows"] == 4 and added["encrypted"]
    assert added["appended"] | {"created_at": None, "detail": {}} == {
        "version": 2, "base_version": 1, "rows_appended": 2, "origin": "http", "source_key": "user:admin",
        "first_offset": None, "last_offset": None, "detail": {}, "created_at": None,
    }  # fmt: skip
    frame = download(plat, project, "clicks", 2, tmp_path)
    assert frame["label"].tolist() == ["cat", "dog", "cat", "fox"]
    assert frame["colour"].tolist() == ["red", "blue", "红", "red"]
    assert download(plat, project, "clicks", 1, tmp_path)["label"].tolist() == ["cat", "dog"]  # version 1 unchanged
    more = client.append_rows(project, "clicks", b"x,colour,label\n4,green,dog\n")  # CSV body, typed by the schema
    assert (more["version"], more["rows"], more["appended"]["base_version"]) == (3, 5, 2)
    assert download(plat, project, "clicks", 3, tmp_path)["x"].tolist()[-1] == 4
    windows = client.dataset_windows(project, "clicks")
    assert [w["version"] for w in windows["items"]] == [3, 2] and windows["total"] == 2
    actions = [e["action"] for e in client.audit(project)["items"]]
    assert actions.count("dataset.append") == 2


@pytest.mark.parametrize(
    ("rows", "says"),
    [
        ([{"x": 1, "colour": "red", "label": "cat", "size": 3}], "row 1: unknown column 'size'"),
        ([{"x": 1, "colour": "red", "label": "cat"}, {"x": 1, "label": "cat"}], "row 2: column 'colour' is missing"),
        ([{"x": "lots", "colour": "red", "label": "cat"}], "row 1, column 'x': a number is expected"),
        ([{"x": 1, "colour": 7, "label": "cat"}], "row 1, column 'colour': text is expected"),
        (b"x,colour,label\nabc,red,cat\n", "row 1, column 'x': a number is expected; got 'abc'"),
    ],
)
def test_a_bad_row_is_refused_with_its_row_and_column_and_stores_nothing(plat, project, rows, says):
    client = plat.client()
    client.upload_dataset(project, "clicks", CSV.encode(), filename="clicks.csv")
    with pytest.raises(ApiError) as refused:
        client.append_rows(project, "clicks", rows)
    assert refused.value.status == 422 and says in str(refused.value)
    assert client.dataset(project, "clicks")["versions"] == 1


def test_first_rows_make_a_dataset_and_appends_are_limited_and_need_an_editor(plat, project):
    client = plat.client()
    first = client.append_rows(project, "fresh", [{"a": 1.0, "b": "x"}])
    assert (first["version"], first["rows"], first["format"]) == (1, 1, "jsonl")
    assert first["appended"]["base_version"] is None
    big = io.StringIO()
    pd.DataFrame({"a": range(4000), "b": ["y" * 10] * 4000}).to_csv(big, index=False)
    assert len(big.getvalue()) > MAX_UPLOAD_MB * (1 << 20)
    with pytest.raises(ApiError) as refused:
        client.append_rows(project, "fresh", big.getvalue().encode())
    assert refused.value.status == 413
    name, token = plat.new_user("viewer")
    client.set_member(project, name, "viewer")
    with pytest.raises(ApiError) as forbidden:
        plat.client(token).append_rows(project, "fresh", [{"a": 2.0, "b": "z"}])
    assert forbidden.value.status == 403
    assert client.dataset(project, "fresh")["versions"] == 1


def test_remote_append_from_the_command_line(plat, project, tmp_path):
    from typer.testing import CliRunner

    from modelworks.cli import app

    common = ["--url", plat.url, "--token", plat.admin_token, "--project", project]
    plat.client().upload_dataset(project, "cli", CSV.encode(), filename="cli.csv")
    rows = tmp_path / "more.jsonl"
    rows.write_text('{"x": 7, "colour": "紫", "label": "fox"}\n{"x": 8, "colour": "red", "label": "cat"}\n', "utf-8")
    out = CliRunner().invoke(app, ["remote", "append", "cli", str(rows), *common])
    assert out.exit_code == 0, out.output
    assert "dataset cli version 2: 2 rows appended after version 1, 4 in all" in out.output
    bad = tmp_path / "bad.csv"
    bad.write_text("x,colour\n1,red\n", encoding="utf-8")
    out = CliRunner().invoke(app, ["remote", "append", "cli", str(bad), *common])
    assert out.exit_code == 2 and "row 1: column 'label' is missing" in out.output
