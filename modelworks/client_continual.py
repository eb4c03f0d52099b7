"""`modelworks.Client`'s continual-learning calls: a one-off continuation (a ``continue`` job) and
continual policies with their history. Mixed into `Client`; each call goes through its ``_call``."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote


def _seg(value: str) -> str:
    return quote(value, safe="").replace(".", "%2E")  # as `modelworks.client._seg`: a name stays one segment


class ContinualCalls:
    """Continue a registered model on new data, and manage the policies that do it on their own."""

    def _call(self, method: str, path: str, **kwargs: Any) -> Any:  # provided by Client
        raise NotImplementedError

    def continue_model(
        self, project: str, model: str, data: str, *, gate: dict[str, Any] | None = None,
        train: dict[str, Any] | None = None, alias: str | None = None, window_start: int = 0, max_attempts: int = 3,
    ) -> dict[str, Any]:  # fmt: skip
        """Queue a continue job: ``model`` is MODEL@ALIAS or MODEL@VERSION, ``data`` dataset:NAME@VERSION,
        ``gate`` the gate's settings (gate.yaml), ``train`` changes to the parent's train section."""
        config: dict[str, Any] = {"model": model, "data": data, "window_start": window_start}
        config |= {k: v for k, v in (("gate", gate), ("train", train), ("alias", alias)) if v is not None}
        body = {"kind": "continue", "config": config, "max_attempts": max_attempts, "timeout_s": None}
        return self._call("POST", f"/projects/{_seg(project)}/jobs", json=body)

    def create_policy(self, project: str, name: str, model: str, dataset: str, **settings: Any) -> dict[str, Any]:
        """A continual policy; ``settings``: alias, trigger (rows, drift, interval), min_rows, interval_s,
        versioning (cumulative, increments), detector (adwin, ddm), gate, train."""
        body = {"name": name, "model": model, "dataset": dataset, **settings}
        return self._call("POST", f"/projects/{_seg(project)}/continual/policies", json=body)

    def policies(self, project: str, *, limit: int = 50, offset: int = 0) -> dict[str, Any]:
        params = {"limit": limit, "offset": offset}
        return self._call("GET", f"/projects/{_seg(project)}/continual/policies", params=params)

    def policy(self, project: str, name: str) -> dict[str, Any]:
        return self._call("GET", f"/projects/{_seg(project)}/continual/policies/{_seg(name)}")

    def set_policy_enabled(self, project: str, name: str, enabled: bool) -> dict[str, Any]:
        path = f"/projects/{_seg(project)}/continual/policies/{_seg(name)}"
        return self._call("PATCH", path, json={"enabled": enabled})

    def delete_policy(self, project: str, name: str) -> None:
        self._call("DELETE", f"/projects/{_seg(project)}/continual/policies/{_seg(name)}")

    def windows(self, project: str, *, policy: str | None = None, limit: int = 50, offset: int = 0) -> dict[str, Any]:
        """The windows continue jobs saw (one policy's when named), newest first, with the gate's decisions."""
        params = {"limit": limit, "offset": offset, **({"policy": policy} if policy else {})}
        return self._call("GET", f"/projects/{_seg(project)}/continual/windows", params=params)
