"""Datasets over real HTTP, on SQLite and PostgreSQL: versions, encryption at rest, tampering,
size limits, archives and path traversal; key rotation and an fsspec memory:// store on SQLite."""

from __future__ import annotations

import hashlib
import io
import uuid
import zipfile
from pathlib import Path

import fsspec
import pandas as pd
import pytest
from sqlalchemy import select

from modelworks.config.schema import DataConfig
from modelworks.data.formats import FORMATS
from modelworks.data.sources import read_source
from modelworks.platform import dataset_files, datasets, uploads
from modelworks.platform.bootstrap import prepare
from modelworks.platform.crypto import (
    HEADER,
    NONCE_BYTES,
    TAG_BYTES,
    Keyring,
    TamperedData,
    UnknownKey,
    decrypt_chunks,
    new_key,
)
from modelworks.platform.db import make_engine, session_factory
from modelworks.platform.db.models import Project
from modelworks.platform.settings import Settings

from ..data.helpers import SAMPLES
from ..fixtures.platform import BACKENDS, LiveServer, Platform, _new_database

KEY = new_key()
CHUNK = 4096  # small chunks, so small files have several
CSV = "\ufeff城市,人口,score\n北京,21540000,1.5\n上海,24870000,2.5\n深圳,17560000,\n".encode()


@pytest.fixture(scope="module", params=BACKENDS)
def plat(request, tmp_path_factory):
    home = tmp_path_factory.mktemp(f"ds-{request.param}")
    with _new_database(request, request.param, home) as db:
        settings = Settings.from_env({}, home=home, database_url=db.url, port=0, max_upload_mb=1, data_key=KEY)
        token = prepare(settings)
        with LiveServer(settings) as server:
            server.app.state.datastore.chunk_size = CHUNK
            p = Platform(server=server, settings=settings, backend=request.param, admin_token=token)
            try:
                yield p
            finally:
                p.close()


@pytest.fixture(scope="module")
def project(plat):
    name = f"ds-{uuid.uuid4().hex[:6]}"
    plat.client().create_project(name)
    return name


def base(project: str) -> str:
    return f"/api/v1/projects/{project}/datasets"


def files_under(root: Path) -> set[str]:
    return {str(p.relative_to(root)) for p in root.rglob("*") if p.is_file()} if root.exists() else set()


def snapshot(plat) -> tuple[set[str], set[str]]:
    """Every file the service has written, in the artifact store and in its scratch folder."""
    return files_under(Path(plat.settings.artifacts)), files_under(plat.settings.home / "scratch")


def stored_file(plat, info: dict, project: str) -> Path:
    engine = make_engine(plat.settings.database_url)
    with session_factory(engine)() as session:
        p = session.scalar(select(Project).where(Project.name == project))
        row = datasets.get_version(session, p, info["dataset"], info["version"])
    engine.dispose()
    return Path(plat.settings.artifacts) / row.storage_path


def test_upload_versions_and_download(plat, project):
    c = plat.client()
    v1 = c.upload_dataset(project, "cities", CSV, filename="cities.csv")
    assert v1["version"] == 1 and v1["sha256"] == hashlib.sha256(CSV).hexdigest() and v1["size"] == len(CSV)
    assert v1["rows"] == 3 and v1["format"] == "csv" and v1["encrypted"] and v1["key_id"]
    assert [(s["name"], s["type"]) for s in v1["schema"]] == [
        ("城市", "categorical"),
        ("人口", "numeric"),
        ("score", "numeric"),
    ]
    assert v1["preview"]["rows"][0] == {"城市": "北京", "人口": 21540000, "score": 1.5}
    assert v1["preview"]["rows"][2]["score"] is None
    on_disk = stored_file(plat, v1, project).read_bytes()
    assert CSV not in on_disk and "北京".encode() not in on_disk

    changed = CSV + "广州,18680000,3.5\n".encode()
    v2 = c.upload_dataset(project, "cities", changed, filename="cities.csv")
    assert v2["version"] == 2 and v2["rows"] == 4
    assert c.dataset_version(project, "cities", 1) == {**v1}  # version 1 unchanged
    detail = c.dataset(project, "cities")
    assert [v["version"] for v in detail["items"]] == [1, 2] and detail["latest"] == 2
    assert plat.http(plat.admin_token).get(f"{base(project)}", params={"limit": 1}).json()["total"] >= 1

    for version, data in [(1, CSV), (2, changed)]:
        r = plat.http(plat.admin_token).get(f"{base(project)}/cities/versions/{version}/download")
        assert r.status_code == 200 and r.content == data
    actions = [e["action"] for e in c.audit(project)["items"]]
    assert actions.count("dataset.upload") >= 2


def test_client_streams_files_and_other_formats(plat, project, tmp_path):
    c = plat.client()
    frame = pd.DataFrame({"x": [1.0, 2.0, 3.0], "label": ["a", "b", "a"]})
    frame.to_parquet(tmp_path / "t.parquet")
    (tmp_path / "t.jsonl").write_text('{"x": 1, "text": "你好"}\n\n{"x": 2, "text": "世界"}\n', encoding="utf-8")
    pq = c.upload_dataset(project, "table", tmp_path / "t.parquet")
    js = c.upload_dataset(project, "lines", tmp_path / "t.jsonl")
    assert (pq["format"], pq["rows"], js["format"], js["rows"]) == ("parquet", 3, "jsonl", 2)
    out = c.download_dataset(project, "table", 1, tmp_path / "back.parquet")
    assert out.read_bytes() == (tmp_path / "t.parquet").read_bytes()


def _zip(entries: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for name, data in entries.items():
            zf.writestr(name, data)
    return buf.getvalue()


def test_image_zip_and_materialize(plat, project, tmp_path):
    data = _zip({"pets/cat/1.png": b"p1", "pets/cat/2.png": b"p2", "pets/dog/1.png": b"p3"})
    v = plat.client().upload_dataset(project, "pets", data, filename="pets.zip")
    assert v["format"] == "images-zip" and v["rows"] == 3 and v["preview"]["classes"] == {"cat": 2, "dog": 1}
    assert v["preview"]["rows"][0] == {"image": "cat/1.png", "label": "cat"}
    engine = make_engine(plat.settings.database_url)
    with session_factory(engine)() as session:
        p = session.scalar(select(Project).where(Project.name == project))
        root = dataset_files.materialize(session, p, "pets", 1, tmp_path / "work", store=plat.app.state.datastore)
        assert sorted(str(f.relative_to(root)) for f in root.rglob("*.png")) == ["cat/1.png", "cat/2.png", "dog/1.png"]
        csv = dataset_files.materialize(session, p, "cities", 1, tmp_path / "work", store=plat.app.state.datastore)
        assert csv.read_bytes() == CSV
    engine.dispose()


def _folder_zip(folder: Path) -> bytes:
    """A zip of `folder` as a person makes one: every entry under the folder's own name."""
    return _zip({str(f.relative_to(folder.parent)): f.read_bytes() for f in sorted(folder.rglob("*")) if f.is_file()})


@pytest.mark.parametrize("fmt", sorted(uploads.UPLOADS))
def test_every_upload_format_is_accepted(plat, project, fmt, tmp_path):
    """Each engine data format that declares an upload: found from each of its extensions, or
    named with format=, described by the engine's reader, and downloaded back unchanged."""
    entry = uploads.UPLOADS[fmt]
    upload, sample = entry.meta["upload"], SAMPLES[entry.name]
    source = Path(sample.write(tmp_path))
    data = _folder_zip(source) if upload.archive else source.read_bytes()
    c, name = plat.client(), f"up-{fmt}-{uuid.uuid4().hex[:6]}"
    filenames = [(f"sample{ext.upper()}", None) for ext in upload.extensions] + [("sample.bin", fmt)]
    for version, (filename, given) in enumerate(filenames, start=1):
        v = c.upload_dataset(project, name, data, filename=filename, format=given)
        assert (v["version"], v["format"], v["rows"]) == (version, fmt, sample.rows), filename
        assert [s["name"] for s in v["schema"]] == sample.columns
        assert len(v["preview"]["rows"]) == sample.rows and ("classes" in v["preview"]) == upload.classes
    r = plat.http(plat.admin_token).get(f"{base(project)}/{name}/versions/1/download")
    assert r.status_code == 200 and r.content == data
    engine = make_engine(plat.settings.database_url)
    with session_factory(engine)() as session:  # what a job reads: the engine's reader finds the format itself
        p = session.scalar(select(Project).where(Project.name == project))
        source = dataset_files.engine_source(session, p, name, 1, tmp_path / "work", store=plat.app.state.datastore)
    engine.dispose()
    loaded = read_source(DataConfig(source=source, **sample.config), tmp_path)
    assert (list(loaded.frame.columns), len(loaded.frame)) == (sample.columns, sample.rows)
    damaged = Path(sample.damage(tmp_path))
    before = snapshot(plat)
    bad = _folder_zip(damaged) if upload.archive else damaged.read_bytes()
    params = {"filename": filenames[0][0]}
    r = plat.http(plat.admin_token).post(f"{base(project)}/{name}/versions", params=params, content=bad)
    assert r.status_code == 400, r.text
    assert snapshot(plat) == before and c.dataset(project, name)["latest"] == len(filenames)


def test_unknown_upload_formats_are_refused(plat, project):
    http = plat.http(plat.admin_token)
    r = http.post(f"{base(project)}/odd/versions", params={"filename": "d.xlsx"}, content=CSV)
    assert r.status_code == 400
    message = r.json()["error"]["message"]
    assert all(f"*{ext}" in message for ext in uploads.EXTENSION_FORMATS) and ", ".join(uploads.UPLOADS) in message
    not_uploadable = [e.name for e in FORMATS if e.meta.get("upload") is None]
    for fmt in not_uploadable:
        r = http.post(f"{base(project)}/odd/versions", params={"filename": "d.csv", "format": fmt}, content=CSV)
        assert r.status_code == 422, (fmt, r.text)
    assert http.get(f"{base(project)}/odd").status_code == 404


@pytest.mark.parametrize(
    "entries",
    [{"cat/1.png": b"x", "../evil.png": b"x"}, {"/tmp/evil-abs.png": b"x"}, {"cat/../../evil.png": b"x"}, "symlink"],
    ids=["dotdot", "absolute", "nested-dotdot", "symlink"],
)
def test_unsafe_zip_is_refused_and_nothing_is_written(plat, project, entries):
    if entries == "symlink":
        buf = io.BytesIO()
        with zipfile.ZipFile(buf, "w") as zf:
            zf.writestr("cat/1.png", b"x")
            info = zipfile.ZipInfo("cat/link.png")
            info.create_system, info.external_attr = 3, (0o120777 << 16)
            zf.writestr(info, "/etc/passwd")
        data = buf.getvalue()
    else:
        data = _zip(entries)
    before = snapshot(plat)
    r = plat.http(plat.admin_token).post(
        f"{base(project)}/bad-zip/versions", params={"filename": "x.zip"}, content=data
    )
    assert r.status_code == 400, r.text
    assert "refused archive entry" in r.json()["error"]["message"]
    assert snapshot(plat) == before
    assert not (plat.settings.home / "evil.png").exists() and not Path("/tmp/evil-abs.png").exists()
    assert plat.http(plat.admin_token).get(f"{base(project)}/bad-zip").status_code == 404


@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
def test_size_limit_is_413_and_leaves_nothing(plat, project, chunked):
    big = b"a,b\n" + b"1,2\n" * 300_000  # 1.2 MB > 1 MB
    before = snapshot(plat)
    content = (big[i : i + 65536] for i in range(0, len(big), 65536)) if chunked else big
    r = plat.http(plat.admin_token).post(
        f"{base(project)}/big/versions", params={"filename": "big.csv"}, content=content
    )
    assert r.status_code == 413 and "limit of 1 MB" in r.json()["error"]["message"]
    assert snapshot(plat) == before


# Literal ".." segments are not here: httpx (like browsers) resolves them before sending.
NAMES = [
    "%2E%2E",
    "..%2Fevil",
    "%2E%2E%2F%2E%2E%2Fetc",
    "..%5Cevil",
    "a%5Cb",
    "a%00b",
    "%2Fetc%2Fpasswd",
    "..%252Fevil",
    "%00",
    "UPPER",
    "a%2Fb",
]
FILENAMES = [
    "../evil.csv",
    "..%2Fevil.csv",
    "/etc/evil.csv",
    "a\\..\\evil.csv",
    "evil\x00.csv",
    "sub/evil.csv",
    "C:evil.csv",
]
VERSIONS = ["%2E%2E", "0", "-1", "1%2F..", "..%2F1", "1.5", "99999999999"]


def test_path_traversal_is_refused_and_touches_nothing(plat, project):
    http = plat.http(plat.admin_token)
    before = snapshot(plat), http.get(base(project), params={"limit": 500}).json()
    for name in NAMES:
        for method, suffix in [
            ("POST", "/versions?filename=a.csv"),
            ("POST", "/builtin"),
            ("GET", ""),
            ("GET", "/versions/1"),
            ("GET", "/versions/1/download"),
            ("DELETE", ""),
        ]:
            url = f"{base(project)}/{name}{suffix}"
            r = http.request(
                method,
                url,
                content=CSV if suffix.startswith("/versions?") else None,
                json={"builtin": "iris"} if suffix == "/builtin" else None,
            )
            assert r.status_code in (400, 404, 405, 422), f"{method} {url}: {r.status_code} {r.text}"
    for filename in FILENAMES:
        r = http.post(f"{base(project)}/cities/versions", params={"filename": filename}, content=CSV)
        assert r.status_code == 400, f"{filename!r}: {r.status_code} {r.text}"
    for version in VERSIONS:
        for suffix in ("", "/download"):
            r = http.get(f"{base(project)}/cities/versions/{version}{suffix}")
            assert r.status_code in (400, 404, 422), f"{version}: {r.status_code} {r.text}"
    r = http.post(f"{base(project)}/x/builtin", json={"builtin": "../iris"})
    assert r.status_code == 422
    assert (snapshot(plat), http.get(base(project), params={"limit": 500}).json()) == before


@pytest.mark.parametrize("kind", ["flip a byte", "truncate", "swap two chunks", "drop the last chunk"])
def test_tampered_file_is_detected_on_read(plat, project, kind, tmp_path):
    data = b"id,text\n" + b"".join(b"%d,row number %d\n" % (i, i) for i in range(1500))  # ~30 KB: several chunks
    name = f"t-{uuid.uuid4().hex[:6]}"
    v = plat.client().upload_dataset(project, name, data, filename="t.csv")
    path = stored_file(plat, v, project)
    blob = path.read_bytes()
    record = NONCE_BYTES + CHUNK + TAG_BYTES
    head, body = blob[: HEADER.size], blob[HEADER.size :]
    if kind == "flip a byte":
        bad = bytearray(blob)
        bad[len(blob) // 2] ^= 0x01
        blob = bytes(bad)
    elif kind == "truncate":
        blob = blob[:-100]
    elif kind == "swap two chunks":
        blob = head + body[record : 2 * record] + body[:record] + body[2 * record :]
    else:
        blob = head + body[: (len(body) // record) * record]
    path.write_bytes(blob)
    r = plat.http(plat.admin_token).get(f"{base(project)}/{name}/versions/1/download")
    assert r.status_code == 500 and "integrity check" in r.json()["error"]["message"]
    assert b"row number" not in r.content
    engine = make_engine(plat.settings.database_url)
    with session_factory(engine)() as session:
        p = session.scalar(select(Project).where(Project.name == project))
        with pytest.raises(TamperedData):
            dataset_files.materialize(session, p, name, 1, tmp_path / "work", store=plat.app.state.datastore)
    engine.dispose()
    assert not any((tmp_path / "work").iterdir())  # no partial copy left for a job to pick up


def test_builtin_registration(plat, project):
    v = plat.client().register_builtin(project, "iris", "iris")
    assert v["format"] == "builtin" and v["source"] == "builtin:iris" and v["rows"] == 150 and not v["encrypted"]
    assert len(v["preview"]["rows"]) == 20 and v["preview"]["target"]
    r = plat.http(plat.admin_token).post(f"{base(project)}/iris/builtin", json={"builtin": "no-such-set"})
    assert r.status_code == 400
    r = plat.http(plat.admin_token).get(f"{base(project)}/iris/versions/1/download")
    assert r.status_code == 400 and "built-in" in r.json()["error"]["message"]


def test_roles_on_datasets(plat, project):
    viewer, viewer_token = plat.new_user("viewer")
    editor, editor_token = plat.new_user("editor")
    _, outsider_token = plat.new_user("outsider")
    plat.client().set_member(project, viewer, "viewer")
    plat.client().set_member(project, editor, "editor")
    as_viewer, as_editor, as_outsider = plat.http(viewer_token), plat.http(editor_token), plat.http(outsider_token)
    assert as_viewer.get(f"{base(project)}/cities/versions/1/download").content == CSV
    assert (
        as_viewer.post(f"{base(project)}/cities/versions", params={"filename": "a.csv"}, content=CSV).status_code == 403
    )
    assert (
        as_editor.post(f"{base(project)}/mine/versions", params={"filename": "a.csv"}, content=CSV).status_code == 201
    )
    assert as_editor.delete(f"{base(project)}/mine").status_code == 403
    assert as_outsider.get(f"{base(project)}/cities/versions/1/download").status_code == 404
    assert as_outsider.post("/api/v1/datasets/rotate-key").status_code == 403
    folder_files = snapshot(plat)[0]
    assert plat.http(plat.admin_token).delete(f"{base(project)}/mine").status_code == 204
    assert len(snapshot(plat)[0]) == len(folder_files) - 1
    assert as_viewer.get(f"{base(project)}/mine").status_code == 404


# --- on SQLite only: restarting with other keys, and another fsspec filesystem --------------


def _serve(home: Path, **overrides) -> LiveServer:
    settings = Settings.from_env({}, home=home, database_url=f"sqlite:///{home / 'mw.db'}", port=0, **overrides)
    return settings, LiveServer(settings)


def test_key_rotation_keeps_every_version_readable(tmp_path):
    old, new = new_key(), new_key()
    settings, server = _serve(tmp_path, data_key=old)
    token = prepare(settings)
    with server:
        p = Platform(server=server, settings=settings, backend="sqlite", admin_token=token)
        p.client().create_project("rot")
        for i in range(3):
            p.client().upload_dataset("rot", "d", CSV + b"x,%d,1\n" % i, filename="d.csv")
        v1 = p.client().dataset_version("rot", "d", 1)
        old_copy = stored_file(p, v1, "rot").read_bytes()
        p.close()
    settings, server = _serve(tmp_path, data_key=f"{new},{old}")
    with server:
        p = Platform(server=server, settings=settings, backend="sqlite", admin_token=token)
        assert p.client().rotate_data_key() == {"reencrypted": 3, "key_id": Keyring.from_text(new, "k").current}
        assert p.client().rotate_data_key()["reencrypted"] == 0
        assert [e["action"] for e in p.client().audit("rot")["items"]].count("dataset.rotate_key") == 3
        p.close()
    settings, server = _serve(tmp_path, data_key=new)  # the old key is gone
    with server:
        p = Platform(server=server, settings=settings, backend="sqlite", admin_token=token)
        for i in range(3):
            r = p.http(token).get(f"{base('rot')}/d/versions/{i + 1}/download")
            assert r.status_code == 200 and r.content == CSV + b"x,%d,1\n" % i
        assert len(files_under(Path(settings.artifacts))) == 3  # the old files were removed
        p.close()
    with pytest.raises(UnknownKey):
        b"".join(decrypt_chunks(io.BytesIO(old_copy), Keyring.from_text(new, "k")))


def test_memory_filesystem_store(tmp_path):
    root = f"memory://mw-{uuid.uuid4().hex[:8]}"
    settings, server = _serve(tmp_path, artifacts=root)
    token = prepare(settings)
    with server:
        p = Platform(server=server, settings=settings, backend="sqlite", admin_token=token)
        p.client().create_project("mem")
        v = p.client().upload_dataset("mem", "d", CSV, filename="d.csv")
        fs = fsspec.filesystem("memory")
        stored = [f for f in fs.find(root) if f.endswith(".csv.enc")]
        assert len(stored) == 1 and CSV not in fs.cat(stored[0])
        assert p.http(token).get(f"{base('mem')}/d/versions/1/download").content == CSV
        assert v["sha256"] == hashlib.sha256(CSV).hexdigest()
        assert p.http(token).delete(f"{base('mem')}/d").status_code == 204
        assert not [f for f in fs.find(root) if f.endswith(".enc")]
        p.close()
