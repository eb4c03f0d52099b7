"""A platform served on 127.0.0.1 for a test module, with a small upload limit: on SQLite, and on
PostgreSQL in the slow run (`pytest -m slow`)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest

from modelworks.platform.bootstrap import prepare
from modelworks.platform.crypto import new_key
from modelworks.platform.settings import Settings

from ..fixtures.platform import LiveServer, Platform, _new_database

MAX_UPLOAD_MB = 0.05  # 52 kB: an append past it is refused like an upload


@pytest.fixture(scope="module", params=["sqlite", pytest.param("postgresql", marks=pytest.mark.slow)])
def plat(request, tmp_path_factory) -> Iterator[Platform]:
    home = tmp_path_factory.mktemp(f"streams-{request.param}")
    with _new_database(request, request.param, home) as db:
        settings = Settings.from_env(
            {}, home=home, database_url=db.url, port=0, max_upload_mb=MAX_UPLOAD_MB, data_key=new_key()
        )
        token = prepare(settings)
        with LiveServer(settings) as server:
            p = Platform(server=server, settings=settings, backend=request.param, admin_token=token)
            try:
                yield p
            finally:
                p.close()


@pytest.fixture
def project(plat) -> str:
    name = f"s-{uuid.uuid4().hex[:6]}"
    plat.client().create_project(name)
    return name
