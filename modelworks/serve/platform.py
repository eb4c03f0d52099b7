"""The platform's serving process: every deployment of every project, on its own port.

    python -m modelworks.serve.platform [--host 127.0.0.1] [--port 8080] [--data-dir DIR]

`modelworks up` starts it as a process of its own, so inference never runs in the management
API's request threads. It is stateless given the database and the artifact store: it reads the
deployments (`modelworks.platform.deployments.plan`) every ``poll_s`` seconds and makes what it
serves match them, so any number of replicas can run on any machines behind a load balancer.

* Loading: a version's files are copied out of the artifact store into a scratch folder, each
  checked against the SHA-256 the registry froze (and weights against the safetensors format)
  before anything reads them (`modelworks.platform.registry.materialize_version`); the model is
  then loaded from safetensors or ONNX only, and warmed up before it takes a request. No path
  or URL ever comes from a request. The scratch folder is the replica's own (`modelworks.serve.scratch`),
  removed when it stops; one left by a killed replica is removed by the next replica to start.
* Rolling: when an alias moves, the new version is loaded and warmed beside the old one, the
  route switches to it, and the old one is retired ``retire_after_s`` later, once the requests
  that were sent to it have finished: no request fails. A rollback is the same move back. A
  canary is a route with two weighted versions.
* Callers: an inference key of the deployment's project (``Authorization: Bearer mwk_...``),
  or a user's API token with at least the viewer role there. Keys are re-read from the
  database at most every ``KEY_CACHE_S`` seconds, so a revocation takes effect within that.
  Rate limits and quotas answer 429 with Retry-After (see `modelworks.serve.metering`).
* Metering: every authorized request is counted per caller and deployment and flushed to the
  database every few seconds (`modelworks.serve.metering.Meter`, which states the loss window).
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import math
import os
import shutil
import socket
import tempfile
import threading
import time
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anyio
from fastapi import FastAPI, Request
from sqlalchemy.orm import Session
from starlette.exceptions import HTTPException

from modelworks.errors import UserError
from modelworks.platform import inference_keys, tokens
from modelworks.platform.access import role_in
from modelworks.platform.datasets import DataStore
from modelworks.platform.db import make_engine, session_factory
from modelworks.platform.db.models import Project, User
from modelworks.platform.deployments import Target, plan
from modelworks.platform.errors import Unauthenticated
from modelworks.platform.registry import materialize_version
from modelworks.platform.roles import Role
from modelworks.platform.settings import Settings
from modelworks.serve.app import ServeHooks, ServeLimits, create_app
from modelworks.serve.metering import FLUSH_INTERVAL_S, Caller, Meter, RateLimiter, seconds_to_midnight
from modelworks.serve.model import ServedModel
from modelworks.serve.modelset import Deployment, ModelSet, deploy
from modelworks.serve.scratch import Scratch
from modelworks.serve.server import serve
from modelworks.streams.feedback import RequestLog

log = logging.getLogger("modelworks.serve.platform")

KEY_CACHE_S = 2.0
POLL_S = 1.0
RETIRE_AFTER_S = 5.0
RETRY_LOAD_S = 60.0  # a version that failed to load is tried again this much later


@dataclass
class _Credential:
    """What a credential resolved to, cached for `KEY_CACHE_S`: a key's row facts or a user."""

    checked: float
    error: str | None = None
    key: Any = None  # InferenceKey, detached
    user_id: int | None = None
    user_admin: bool = False
    roles: dict[int, Role | None] | None = None  # project id -> role, filled on demand


class Gate(ServeHooks):
    """The platform's `ServeHooks`: who may call which deployment, and the metering."""

    def __init__(self, sessions: Callable[[], Session], meter: Meter, limiter: RateLimiter | None = None) -> None:
        self.sessions = sessions
        self.meter = meter
        self.limiter = limiter or RateLimiter()
        self.targets: dict[str, Target] = {}  # served name -> deployment, kept by `PlatformServing`
        self.requests: RequestLog | None = None  # deployments' opt-in request logs (modelworks.streams.feedback)
        self._deployment: dict[str, str] = {}  # served name -> deployment name, never forgotten (see `record`)
        self._cache: dict[str, _Credential] = {}  # by the credential's SHA-256
        self._watched: set[str] = set()  # keys with a quota whose daily total the meter keeps fresh
        self._lock = threading.Lock()

    # --- authorize

    async def authorize(self, request: Request, model_name: str) -> Caller:
        """The caller of a request to ``model_name``, or an HTTPException (401, 403, 404, 429).
        The database is only read on a cache miss, in a worker thread, never on the event loop."""
        target = self.targets.get(model_name)
        if target is None:
            raise HTTPException(404, f"no deployment serves a model named {model_name!r}")
        self._deployment[model_name] = target.deployment
        header = request.headers.get("authorization", "")
        scheme, _, credential = header.partition(" ")
        if scheme.lower() != "bearer" or not credential.strip():
            raise HTTPException(
                401, "send 'Authorization: Bearer <inference key or API token>'", headers={"WWW-Authenticate": "Bearer"}
            )
        found = self._cached(credential.strip()) or await anyio.to_thread.run_sync(self._lookup, credential.strip())
        if found.error is not None:
            raise HTTPException(401, found.error, headers={"WWW-Authenticate": "Bearer"})
        if found.key is not None:
            if found.key.quota is not None and found.key.id not in self._watched:
                await anyio.to_thread.run_sync(self.meter.watch_quota, found.key.id)
                self._watched.add(found.key.id)
            return self._key_caller(found.key, target)
        assert found.roles is not None
        if target.project_id not in found.roles and not found.user_admin:
            await anyio.to_thread.run_sync(self._read_role, found, target.project_id)
        if not self._user_may(found, target.project_id):
            raise HTTPException(403, f"this needs an inference key of project {target.project!r}, or its viewer role")
        return Caller(project_id=target.project_id, user_id=found.user_id)

    def _key_caller(self, key: Any, target: Target) -> Caller:
        if key.expires_at is not None and key.expires_at.timestamp() <= time.time():
            raise HTTPException(401, inference_keys.REFUSED, headers={"WWW-Authenticate": "Bearer"})
        if not inference_keys.allows(key, target.project_id, target.deployment):
            raise HTTPException(403, f"this inference key is not valid for deployment {target.served_name!r}")
        caller = Caller(project_id=target.project_id, key_id=key.id, rate_limit=key.rate_limit, quota=key.quota)
        if key.quota is not None:
            if self.meter.used_today(key.id) >= key.quota:
                self._refuse(
                    caller, target, f"the key's quota of {key.quota} requests a day is used up", seconds_to_midnight()
                )
        if key.rate_limit is not None:
            wait = self.limiter.take(key.id, key.rate_limit)
            if wait > 0:
                self._refuse(
                    caller,
                    target,
                    f"the key's rate limit of {key.rate_limit} requests a minute is reached",
                    max(1, math.ceil(wait)),
                )
        return caller

    def _refuse(self, caller: Caller, target: Target, why: str, retry_after_s: int) -> None:
        self.meter.record(caller, target.deployment, 0, 429, 0.0)
        raise HTTPException(429, why, headers={"Retry-After": str(retry_after_s)})

    def _cached(self, credential: str) -> _Credential | None:
        with self._lock:
            cached = self._cache.get(tokens.digest(credential))
        return cached if cached is not None and time.monotonic() - cached.checked < KEY_CACHE_S else None

    def _lookup(self, credential: str) -> _Credential:
        found = _Credential(checked=time.monotonic())
        with self.sessions() as session:
            try:
                if inference_keys.is_inference_key(credential):
                    found.key = inference_keys.authenticate_key(session, credential)
                    session.expunge(found.key)
                else:
                    user = tokens.authenticate(session, credential)
                    found.user_id, found.user_admin, found.roles = user.id, user.is_admin, {}
            except Unauthenticated as e:
                found.error = str(e)
        with self._lock:
            if len(self._cache) > 10_000:
                self._cache.clear()
            self._cache[tokens.digest(credential)] = found
        return found

    def _read_role(self, found: _Credential, project_id: int) -> None:
        assert found.roles is not None
        with self.sessions() as session:
            project, user = session.get(Project, project_id), session.get(User, found.user_id)
            found.roles[project_id] = role_in(session, user, project) if project and user else None

    def _user_may(self, found: _Credential, project_id: int) -> bool:
        if found.user_admin:
            return True
        assert found.roles is not None
        role = found.roles.get(project_id)
        return role is not None and role.allows(Role.viewer)

    async def log(self, caller: Caller, served: Deployment, records: list[Any], predictions: list[Any]) -> str | None:
        target = self.targets.get(served.name)
        if self.requests is None or target is None:
            return None
        return await self.requests.log(target.project_id, target.deployment, served, records, predictions)

    @property
    def logs_infer(self) -> bool:
        return self.requests is not None and self.requests.may_log()

    async def log_infer(self, caller: Caller, served: Deployment, inputs: dict[str, Any], outputs: dict[str, Any]
                        ) -> str | None:  # fmt: skip
        target = self.targets.get(served.name)
        if self.requests is None or target is None:
            return None
        return await self.requests.log_tensors(target.project_id, target.deployment, served, inputs, outputs)

    # --- record

    def record(
        self, caller: Caller | None, model_name: str, version: str, rows: int, status: int, latency_s: float
    ) -> None:
        # By the name remembered at authorization: a request in flight when its deployment is
        # removed is still counted.
        deployment = self._deployment.get(model_name)
        if caller is not None and deployment is not None:
            self.meter.record(caller, deployment, rows, status, latency_s)


@dataclass
class _Loaded:
    deployment: Deployment
    folder: Path  # the version's verified files, removed when it is retired


class PlatformServing:
    """The serving process's state: the model set, the gate, the meter, the deployment watcher."""

    def __init__(
        self,
        settings: Settings,
        *,
        replica: str | None = None,
        poll_s: float = POLL_S,
        flush_s: float = FLUSH_INTERVAL_S,
        retire_after_s: float = RETIRE_AFTER_S,
        threads: int | None = None,
        max_queue: int = 256,
    ) -> None:
        self.settings = settings
        self.replica = replica or f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:6]}"
        self.poll_s, self.retire_after_s, self.threads, self.max_queue = poll_s, retire_after_s, threads, max_queue
        self.engine = make_engine(settings.database_url)
        self.sessions = session_factory(self.engine)
        store = DataStore.from_settings(settings)
        self.storage = store.storage
        self.meter = Meter(self.sessions, self.replica, flush_s)
        self.gate = Gate(self.sessions, self.meter)
        self.gate.requests = RequestLog(self.sessions, store.keyring)
        self.models = ModelSet()
        self.scratch_folder = Scratch(settings.home / "serving", self.replica)
        self.scratch = self.scratch_folder.folder
        self._loaded: dict[tuple[str, str], _Loaded] = {}
        self._routes: dict[str, dict[str, float]] = {}
        self._failed: dict[tuple[str, str], float] = {}  # (name, version) -> when its load failed
        self._retiring: set[tuple[str, str]] = set()

    def build_app(self, limits: ServeLimits | None = None) -> FastAPI:
        app = create_app(self.models, hooks=self.gate, limits=limits or ServeLimits())
        inner = app.router.lifespan_context

        @asynccontextmanager
        async def lifespan(a: FastAPI) -> AsyncIterator[Any]:
            swept = await anyio.to_thread.run_sync(self.scratch_folder.open)
            if swept:
                log.info("removed the scratch folders of stopped replicas: %s", ", ".join(p.name for p in swept))
            self.meter.start()
            try:
                async with inner(a) as state:  # on the way out: the queued requests are answered
                    watcher = asyncio.create_task(self.watch(), name="deployment-watcher")
                    try:
                        yield state
                    finally:
                        watcher.cancel()
                        await asyncio.gather(watcher, return_exceptions=True)
            finally:
                self.meter.stop()  # after the last request: it is counted too
                self.scratch_folder.close()
                self.engine.dispose()

        app.router.lifespan_context = lifespan
        return app

    async def watch(self) -> None:
        """Follow the deployments for as long as the process runs."""
        while True:
            try:
                targets = await anyio.to_thread.run_sync(self._read_plan)
                await self.apply(targets)
            except asyncio.CancelledError:
                raise
            except Exception:  # noqa: BLE001 - the watcher outlives a bad moment of the database or one bad model
                log.exception("applying the deployments failed; retrying")
            await asyncio.sleep(self.poll_s)

    def _read_plan(self) -> list[Target]:
        with self.sessions() as session:
            return plan(session)

    async def apply(self, targets: list[Target]) -> None:
        """Load what is missing, switch the routes, retire what no route names any more."""
        wanted = {t.served_name: t for t in targets}
        for name, target in wanted.items():
            routes = {str(v): w for v, w in target.weights.items()}
            for version in routes:
                failed = self._failed.get((name, version))
                if (name, version) not in self._loaded and (failed is None or time.monotonic() - failed > RETRY_LOAD_S):
                    await self._load(target, int(version))
            routes = {v: w for v, w in routes.items() if (name, v) in self._loaded}
            if routes and routes != self._routes.get(name):
                self.models.route(name, routes)
                self._routes[name] = routes
                log.info("deployment %s now serves %s", name, routes)
        self.gate.targets = wanted  # an undeployed name is refused at once
        for name, version in list(self._loaded):
            keep = name in wanted and int(version) in wanted[name].weights
            if not keep and (name, version) not in self._retiring:
                self._retiring.add((name, version))
                asyncio.get_running_loop().call_later(self.retire_after_s, self._schedule_retire, name, version)
        for name in [n for n in self._routes if n not in wanted]:
            del self._routes[name]

    async def _load(self, target: Target, version: int) -> None:
        name = target.served_name
        try:
            loaded = await anyio.to_thread.run_sync(self._load_blocking, target, version)
        except (UserError, OSError, ValueError, RuntimeError):
            log.exception("deployment %s cannot load version %s; it keeps serving what it had", name, version)
            self._failed[(name, str(version))] = time.monotonic()
            return
        self.models.add(loaded.deployment, route=False)
        self._loaded[(name, str(version))] = loaded

    def _load_blocking(self, target: Target, version: int) -> _Loaded:
        self.scratch.mkdir(parents=True, exist_ok=True)
        folder = Path(tempfile.mkdtemp(prefix=f"{target.served_name}-{version}-", dir=self.scratch))
        try:
            run_dir = materialize_version(self.storage, target.versions[version], folder / "run")
            model = ServedModel.load(
                run_dir,
                runtime=target.runtime,
                threads=self.threads,
                name=target.served_name,
                version=str(version),
                precision=target.precision,
            )
            model.warm_up()
        except BaseException:
            shutil.rmtree(folder, ignore_errors=True)
            raise
        return _Loaded(deploy(model, target.max_batch, target.max_delay_ms, self.max_queue), folder)

    def _schedule_retire(self, name: str, version: str) -> None:
        asyncio.get_running_loop().create_task(self._retire(name, version))

    async def _retire(self, name: str, version: str) -> None:
        self._retiring.discard((name, version))
        if version in self._routes.get(name, {}) or (name, version) not in self._loaded:
            return  # routed again in the meantime (a rollback), or retired already
        loaded = self._loaded.pop((name, version))
        if name not in self._routes:  # undeployed: the gate refuses the name already
            self.models.routes.pop(name, None)
        await self.models.retire(name, version)  # after its queued requests are answered
        shutil.rmtree(loaded.folder, ignore_errors=True)
        log.info("deployment %s retired version %s", name, version)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m modelworks.serve.platform", description=__doc__.split("\n")[0])
    parser.add_argument("--host", help="default 127.0.0.1 (MODELWORKS_SERVING_HOST)")
    parser.add_argument("--port", type=int, help="default 8080 (MODELWORKS_SERVING_PORT)")
    parser.add_argument("--data-dir", type=Path, help="default ~/.modelworks (MODELWORKS_HOME)")
    parser.add_argument("--threads", type=int, help="intra-op threads per model (default: the runtime's)")
    parser.add_argument("--flush-s", type=float, default=FLUSH_INTERVAL_S, help="seconds between metering flushes")
    args = parser.parse_args(argv)
    environ = dict(os.environ)
    if args.host:
        environ["MODELWORKS_SERVING_HOST"] = args.host
    if args.port is not None:
        environ["MODELWORKS_SERVING_PORT"] = str(args.port)
    settings = Settings.from_env(environ, home=args.data_dir)
    serving = PlatformServing(settings, threads=args.threads, flush_s=args.flush_s)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    serve(serving.build_app(), host=settings.serving_host, port=settings.serving_port)


if __name__ == "__main__":
    main()
