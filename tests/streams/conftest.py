"""A platform on SQLite, served on 127.0.0.1 for a test module, with a small upload limit."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest

from modelworks.platform.bootstrap import prepare
from modelworks.platform.crypto import new_key
from modelworks.platform.settings import Settings

from ..fixtures.platform import LiveServer, Platform

MAX_UPLOAD_MB = 0.05  # 52 kB: an append past it is refused like an upload


@pytest.fixture(scope="module")
def plat(tmp_path_factory) -> Iterator[Platform]:
    home = tmp_path_factory.mktemp("streams")
    settings = Settings.from_env(
        {}, home=home, database_url=f"sqlite:///{home / 'modelworks.db'}", port=0, max_upload_mb=MAX_UPLOAD_MB,
        data_key=new_key(),
    )  # fmt: skip
    token = prepare(settings)
    with LiveServer(settings) as server:
        p = Platform(server=server, settings=settings, backend="sqlite", admin_token=token)
        try:
            yield p
        finally:
            p.close()


@pytest.fixture
def project(plat) -> str:
    name = f"s-{uuid.uuid4().hex[:6]}"
    plat.client().create_project(name)
    return name
