"""Fixtures for the platform service: real databases (an SQLite file, and a PostgreSQL cluster
started here from Debian's server binaries) and a real server on 127.0.0.1.

``database_url`` (one fresh database per test) and ``platform`` (one running server per module,
with its admin token) are parametrized over both backends; the PostgreSQL half is skipped
cleanly where the server binaries are absent.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import threading
import time
import uuid
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

import httpx
import pytest
import uvicorn

from modelworks.client import Client
from modelworks.platform.bootstrap import prepare
from modelworks.platform.settings import Settings
from modelworks.server import create_app

BACKENDS = ["sqlite", "postgresql"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# --- PostgreSQL --------------------------------------------------------------------------------


def _pg_bindir() -> Path | None:
    """Where initdb and pg_ctl live: MODELWORKS_TEST_PG_BIN, Debian's versioned folder, or PATH."""
    candidates = [os.environ.get("MODELWORKS_TEST_PG_BIN")]
    candidates += sorted(Path("/usr/lib/postgresql").glob("*/bin"), key=lambda p: int(p.parent.name) if p.parent.name.isdigit() else 0, reverse=True)
    candidates.append(str(Path(shutil.which("pg_ctl")).parent) if shutil.which("pg_ctl") else None)
    for c in candidates:
        if c and (Path(c) / "initdb").exists() and (Path(c) / "pg_ctl").exists():
            return Path(c)
    return None


@dataclass
class PgCluster:
    """A throwaway PostgreSQL cluster: its data and unix socket in one temporary folder, TCP on
    127.0.0.1 only. As root, it runs as the ``postgres`` user (PostgreSQL refuses root)."""

    bindir: Path
    root: Path
    port: int = field(default_factory=free_port)

    def _run(self, *args: str) -> None:
        cmd = [str(self.bindir / args[0]), *args[1:]]
        if os.geteuid() == 0:
            cmd = ["runuser", "-u", "postgres", "--", *cmd]
        result = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
        if result.returncode != 0:
            raise RuntimeError(f"{' '.join(cmd)} failed:\n{result.stdout}\n{result.stderr}")

    def start(self) -> None:
        self._run("initdb", "-D", str(self.root / "data"), "-U", "postgres", "-A", "trust", "--no-sync", "-E", "UTF8", "--no-locale")
        options = f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off -c full_page_writes=off"
        self._run("pg_ctl", "-D", str(self.root / "data"), "-l", str(self.root / "server.log"), "-w", "-t", "60", "-o", options, "start")

    def stop(self) -> None:
        self._run("pg_ctl", "-D", str(self.root / "data"), "-m", "immediate", "-w", "stop")

    def url(self, database: str) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{database}"

    def _admin(self, sql: str) -> None:
        import psycopg

        with psycopg.connect(host="127.0.0.1", port=self.port, user="postgres", dbname="postgres", autocommit=True) as conn:
            conn.execute(sql)

    def create_database(self) -> str:
        name = f"mw_{uuid.uuid4().hex[:12]}"
        self._admin(f'CREATE DATABASE "{name}"')
        return name

    def drop_database(self, name: str) -> None:
        self._admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="session")
def pg_cluster() -> Iterator[PgCluster]:
    bindir = _pg_bindir()
    if bindir is None:
        pytest.skip("PostgreSQL server binaries (initdb, pg_ctl) not found")
    if os.geteuid() == 0 and shutil.which("runuser") is None:
        pytest.skip("running as root without runuser: cannot start PostgreSQL as the postgres user")
    try:
        import psycopg  # noqa: F401
    except ImportError:
        pytest.skip("psycopg is not installed (pip install 'modelworks[postgres]')")
    root = Path(tempfile.mkdtemp(prefix="mw-pg-"))  # short: the unix socket path has a length limit
    if os.geteuid() == 0:
        shutil.chown(root, "postgres", "postgres")
    cluster = PgCluster(bindir=bindir, root=root)
    try:
        cluster.start()
        yield cluster
    finally:
        try:
            cluster.stop()
        except RuntimeError:
            pass
        shutil.rmtree(root, ignore_errors=True)


@dataclass
class Database:
    backend: str
    url: str
    home: Path


@contextmanager
def _new_database(request: pytest.FixtureRequest, backend: str, home: Path) -> Iterator[Database]:
    if backend == "sqlite":
        yield Database(backend, f"sqlite:///{home / 'modelworks.db'}", home)
        return
    cluster: PgCluster = request.getfixturevalue("pg_cluster")
    name = cluster.create_database()
    try:
        yield Database(backend, cluster.url(name), home)
    finally:
        cluster.drop_database(name)


@pytest.fixture(params=BACKENDS)
def database(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Database]:
    """A fresh, empty database of each backend, for one test."""
    with _new_database(request, request.param, tmp_path) as db:
        yield db


# --- a live server ---------------------------------------------------------------------------


class LiveServer:
    """The real app served by uvicorn on 127.0.0.1 in a background thread."""

    def __init__(self, settings: Settings) -> None:
        self.app = create_app(settings)
        # Bound here so the port is ours before the thread starts. Accepted connections inherit
        # TCP_NODELAY from it; without it, each small response waits ~40 ms on Nagle's algorithm.
        self._socket = socket.socket()
        self._socket.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self._socket.bind(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self._socket.getsockname()[1]}"
        config = uvicorn.Config(self.app, log_level="warning", timeout_graceful_shutdown=2)
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, kwargs={"sockets": [self._socket]}, daemon=True)

    def __enter__(self) -> "LiveServer":
        self._thread.start()
        deadline = time.monotonic() + 30
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the test server did not start")
            time.sleep(0.01)
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.should_exit = True
        self._thread.join(timeout=15)
        self._socket.close()


@dataclass
class Platform:
    """A running platform: its URL, admin token and settings, with helpers to act as users."""

    server: LiveServer
    settings: Settings
    backend: str
    admin_token: str
    # Clients are cached: building an httpx client costs ~40 ms (it loads the CA bundle).
    _http: dict[tuple[str | None, str | None], httpx.Client] = field(default_factory=dict)
    _clients: dict[str, Client] = field(default_factory=dict)

    @property
    def url(self) -> str:
        return self.server.url

    @property
    def app(self) -> Any:
        return self.server.app

    def http(self, token: str | None = None, header: str | None = None) -> httpx.Client:
        """Raw HTTP with ``Authorization: Bearer token`` (or the raw ``header``; neither: none)."""
        key = (token, header)
        if key not in self._http:
            headers = {"Authorization": header} if header is not None else ({"Authorization": f"Bearer {token}"} if token else {})
            self._http[key] = httpx.Client(base_url=self.url, headers=headers, timeout=30)
        return self._http[key]

    def client(self, token: str | None = None) -> Client:
        """The Python client acting with ``token`` (default: the admin's)."""
        token = token or self.admin_token
        if token not in self._clients:
            self._clients[token] = Client(self.url, token)
        return self._clients[token]

    def new_user(self, prefix: str = "user", *, is_admin: bool = False) -> tuple[str, str]:
        """Create a user with a unique name; returns (name, token)."""
        name = f"{prefix}-{uuid.uuid4().hex[:8]}"
        created = self.client().create_user(name, is_admin=is_admin)
        return name, created["token"]["token"]

    def close(self) -> None:
        for client in [*self._http.values(), *self._clients.values()]:
            client.close()


@contextmanager
def _serve(request: pytest.FixtureRequest, backend: str, home: Path, environ: dict[str, str]) -> Iterator[Platform]:
    with _new_database(request, backend, home) as db:
        settings = Settings.from_env(environ, home=home, database_url=db.url, port=0)
        token = prepare(settings)
        assert token is not None
        with LiveServer(settings) as server:
            p = Platform(server=server, settings=settings, backend=backend, admin_token=token)
            try:
                yield p
            finally:
                p.close()


@pytest.fixture(scope="module", params=BACKENDS)
def platform(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Platform]:
    """A migrated database with its first admin, served for the whole test module."""
    # Every test client is 127.0.0.1, and the auth tests send refused tokens by the hundred: the
    # per-address limit on refused tokens (tested with `strict_platform`) is lifted here.
    environ = {"MODELWORKS_AUTH_FAILURES": "1000000"}
    with _serve(request, request.param, tmp_path_factory.mktemp(f"platform-{request.param}"), environ) as p:
        yield p


STRICT_LIMITS = {
    "MODELWORKS_AUTH_FAILURES": "5",
    "MODELWORKS_BODY_TIMEOUT_S": "1",
    "MODELWORKS_MAX_CONFIG_KB": "64",
    "MODELWORKS_MAX_CONFIG_DEPTH": "16",
}


@pytest.fixture(scope="module", params=BACKENDS)
def strict_platform(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Platform]:
    """A platform with tight limits (`STRICT_LIMITS`: few refused tokens, a short body timeout,
    small configs), for tests/server/test_hardening.py."""
    with _serve(request, request.param, tmp_path_factory.mktemp(f"strict-{request.param}"), STRICT_LIMITS) as p:
        yield p


@pytest.fixture
def live_server():
    """The `LiveServer` class, for tests that start their own server."""
    return LiveServer
