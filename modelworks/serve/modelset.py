"""The models a server answers for, by name and version, and which version takes a request.

`ModelSet` can change while the server runs: the platform adds a new version (loaded and warmed
up), routes the name to it, then retires the old one, whose queued requests finish first. Routing
a name to two versions with weights is a canary. A request holds its `Deployment` from start to
finish, so a switch never fails one.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from modelworks.serve.batcher import DynamicBatcher
from modelworks.serve.model import ServedModel


@dataclass
class Deployment:
    """One version of a model with its batcher."""

    model: ServedModel
    batcher: DynamicBatcher
    name: str = ""
    version: str = ""

    def __post_init__(self) -> None:
        self.name = self.name or self.model.name
        self.version = self.version or self.model.version

    @property
    def ready(self) -> bool:
        return self.model.warmed

    def warm_up(self) -> None:
        """Run the model at batch sizes 1, 2, 4, ... up to the batcher's max batch (runtimes prepare per shape)."""
        sizes = [1 << k for k in range(self.batcher.max_batch.bit_length()) if 1 << k <= self.batcher.max_batch]
        self.model.warm_up(tuple(sizes))


@dataclass
class ModelSet:
    """{name: {version: Deployment}} with each name's routing: {version: weight}."""

    versions: dict[str, dict[str, Deployment]] = field(default_factory=dict)
    routes: dict[str, dict[str, float]] = field(default_factory=dict)
    on_add: list[Callable[[Deployment], None]] = field(default_factory=list)  # e.g. the app's metrics
    rng: random.Random = field(default_factory=random.Random)

    @classmethod
    def of(cls, *deployments: Deployment) -> ModelSet:
        models = cls()
        for d in deployments:
            models.add(d)
        return models

    def add(self, deployment: Deployment, *, route: bool | None = None) -> None:
        """Add a version; it takes the name's traffic when `route` is True, or when it is the first version."""
        versions = self.versions.setdefault(deployment.name, {})
        versions[deployment.version] = deployment
        for hook in self.on_add:
            hook(deployment)
        if route or (route is None and deployment.name not in self.routes):
            self.route(deployment.name, {deployment.version: 1.0})

    def route(self, name: str, weights: Mapping[str, float]) -> None:
        """Send `name`'s requests to these versions in proportion to their weights (a canary: two versions)."""
        known = self.versions.get(name, {})
        unknown = [v for v in weights if v not in known]
        if unknown or not weights or any(w < 0 for w in weights.values()) or sum(weights.values()) <= 0:
            raise ValueError(f"cannot route {name} to {dict(weights)}: versions must be loaded, weights positive")
        self.routes[name] = dict(weights)

    async def retire(self, name: str, version: str) -> None:
        """Remove a version no longer routed to, after its queued requests are answered."""
        if version in self.routes.get(name, {}):
            raise ValueError(f"{name} version {version} still takes traffic; route the name elsewhere first")
        deployment = self.versions.get(name, {}).pop(version, None)
        if not self.versions.get(name):
            self.versions.pop(name, None)
            self.routes.pop(name, None)
        if deployment is not None:
            await deployment.batcher.close()

    def pick(self, name: str, version: str | None = None) -> Deployment | None:
        """The deployment for a request: the named version, or one chosen by the name's weights."""
        versions = self.versions.get(name)
        if not versions:
            return None
        if version is not None:
            return versions.get(version)
        weights = self.routes.get(name) or {v: 1.0 for v in versions}
        if len(weights) == 1:  # no canary: the common case, on every request
            return versions.get(next(iter(weights)))
        choices = [v for v in weights if v in versions]
        if not choices:
            return None
        return versions[self.rng.choices(choices, weights=[weights[v] for v in choices])[0]]

    def all(self) -> list[Deployment]:
        return [d for versions in self.versions.values() for d in versions.values()]

    @property
    def ready(self) -> bool:
        """Whether every model is loaded and warmed up (a platform replica with no deployment yet is ready)."""
        return all(d.ready for d in self.all())

    async def add_ready(self, deployment: Deployment, *, route: bool | None = None) -> None:
        """`add`, after warming the model up in a worker thread: the server never routes to a cold model."""
        if not deployment.ready:
            await deployment.batcher.call(deployment.warm_up)
        self.add(deployment, route=route)

    async def warm_up(self) -> None:
        """Warm every model not yet warm, each in its batcher's worker thread."""
        for d in self.all():
            if not d.ready:
                await d.batcher.call(d.warm_up)

    async def close(self) -> None:
        await asyncio.gather(*(d.batcher.close() for d in self.all()))


def deploy(model: ServedModel, max_batch: int = 32, max_delay_ms: float = 5.0, max_queue: int = 256) -> Deployment:
    """A deployment of `model` with its own batcher (text inputs padded with their pad id)."""
    pad = {t.name: t.pad_id for t in model.inputs if t.pad_id is not None}
    return Deployment(model, DynamicBatcher(model, max_batch, max_delay_ms, max_queue, pad=pad))
