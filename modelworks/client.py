"""A Python client for the platform API.

    client = modelworks.Client("http://127.0.0.1:8000", token)
    client.set_member("vision", "ada", "editor")
    client.policies("vision")["items"]  # continual learning: the calls of `modelworks.client_continual`

Methods return the server's JSON (dicts; lists come as pages ``{"items", "total", "limit", "offset"}``); a
refused request raises `ApiError`, a `UserError` with the server's message and status. Data arrival: `StreamCalls`.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx

from modelworks.client_continual import ContinualCalls  # continue_model, policies, windows, ...
from modelworks.client_streams import StreamCalls
from modelworks.errors import UserError

API_PREFIX = "/api/v1"


class ApiError(UserError):
    """The server refused a request; ``status`` is the HTTP status, ``code`` the error code."""

    def __init__(self, message: str, status: int, code: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code


class Client(ContinualCalls, StreamCalls):
    """The platform API at ``url``, acting as the owner of ``token``."""

    def __init__(
        self, url: str, token: str, *, timeout: float = 30.0, transport: httpx.BaseTransport | None = None
    ) -> None:
        self.url = url.rstrip("/")
        self._http = httpx.Client(
            base_url=self.url + API_PREFIX,
            headers={"Authorization": f"Bearer {token}"},
            timeout=timeout,
            transport=transport,
        )

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- users and tokens ---

    def me(self) -> dict[str, Any]:
        return self._call("GET", "/users/me")

    def create_user(self, name: str, *, is_admin: bool = False) -> dict[str, Any]:
        """Create a user (admins only); the result's ``token.token`` is their first token."""
        return self._call("POST", "/users", json={"name": name, "is_admin": is_admin})

    def users(self, *, limit: int = 50, offset: int = 0) -> dict[str, Any]:
        """Every user, by name (admins only)."""
        return self._call("GET", "/users", params={"limit": limit, "offset": offset})

    def create_token(self, name: str, *, expires_at: datetime | None = None) -> dict[str, Any]:
        """A new token for yourself; ``result["token"]`` is shown this once."""
        return self._call(
            "POST", "/tokens", json={"name": name, "expires_at": expires_at.isoformat() if expires_at else None}
        )

    def tokens(self, *, limit: int = 50, offset: int = 0) -> dict[str, Any]:
        return self._call("GET", "/tokens", params={"limit": limit, "offset": offset})

    def revoke_token(self, token_id: str) -> None:
        self._call("DELETE", f"/tokens/{_seg(token_id)}")

    # --- projects ---

    def projects(self, *, limit: int = 50, offset: int = 0) -> dict[str, Any]:
        return self._call("GET", "/projects", params={"limit": limit, "offset": offset})

    def create_project(self, name: str, *, description: str = "") -> dict[str, Any]:
        return self._call("POST", "/projects", json={"name": name, "description": description})

    def project(self, name: str) -> dict[str, Any]:
        return self._call("GET", f"/projects/{_seg(name)}")

    def delete_project(self, name: str) -> None:
        self._call("DELETE", f"/projects/{_seg(name)}")

    # --- members and audit ---

    def members(self, project: str, *, limit: int = 50, offset: int = 0) -> dict[str, Any]:
        return self._call("GET", f"/projects/{_seg(project)}/members", params={"limit": limit, "offset": offset})

    def member(self, project: str, user: str) -> dict[str, Any]:
        return self._call("GET", f"/projects/{_seg(project)}/members/{_seg(user)}")

    def set_member(self, project: str, user: str, role: str) -> dict[str, Any]:
        """Add ``user`` to ``project`` as ``role`` (viewer, editor or owner), or change their role."""
        return self._call("PUT", f"/projects/{_seg(project)}/members/{_seg(user)}", json={"role": role})

    def remove_member(self, project: str, user: str) -> None:
        self._call("DELETE", f"/projects/{_seg(project)}/members/{_seg(user)}")

    def audit(self, project: str | None = None, *, limit: int = 50, offset: int = 0) -> dict[str, Any]:
        """A project's audit log, or (admins, ``project`` None) every entry; newest first."""
        path = f"/projects/{_seg(project)}/audit" if project is not None else "/audit"
        return self._call("GET", path, params={"limit": limit, "offset": offset})

    # --- jobs and usage ---

    def submit_job(
        self, project: str, kind: str, config: dict[str, Any], *, max_attempts: int = 3, timeout_s: int | None = None
    ) -> dict[str, Any]:
        """Queue a job: train or tune (``config``: an experiment config), evaluate (``{job, split}``),
        compress (``{job, method, options}``) or export (``{job, format, opset, quantize}``)."""
        body = {"kind": kind, "config": config, "max_attempts": max_attempts, "timeout_s": timeout_s}
        return self._call("POST", f"/projects/{_seg(project)}/jobs", json=body)

    def jobs(self, project: str, *, state: str | None = None, limit: int = 50, offset: int = 0) -> dict[str, Any]:
        params = {"limit": limit, "offset": offset, **({"state": state} if state else {})}
        return self._call("GET", f"/projects/{_seg(project)}/jobs", params=params)

    def job(self, project: str, job_id: int) -> dict[str, Any]:
        return self._call("GET", f"/projects/{_seg(project)}/jobs/{int(job_id)}")

    def cancel_job(self, project: str, job_id: int) -> dict[str, Any]:
        return self._call("POST", f"/projects/{_seg(project)}/jobs/{int(job_id)}/cancel")

    def job_logs(self, project: str, job_id: int, *, since: int = 0) -> list[dict[str, Any]]:
        """Log lines after ``since`` (a line's ``seq``), oldest first."""
        return self._call("GET", f"/projects/{_seg(project)}/jobs/{int(job_id)}/logs", params={"since": since})

    def job_metrics(
        self, project: str, job_id: int, *, name: str | None = None, limit: int = 10_000, offset: int = 0
    ) -> dict[str, Any]:
        params = {"limit": limit, "offset": offset, **({"name": name} if name else {})}
        return self._call("GET", f"/projects/{_seg(project)}/jobs/{int(job_id)}/metrics", params=params)

    def usage(self, project: str) -> dict[str, Any]:
        """CPU/GPU seconds and cost, in total and per job."""
        return self._call("GET", f"/projects/{_seg(project)}/usage")

    # --- datasets ---

    def upload_dataset(
        self,
        project: str,
        name: str,
        data: str | Path | bytes,
        *,
        filename: str | None = None,
        format: str | None = None,
        public: bool = False,
    ) -> dict[str, Any]:
        """Upload a file (streamed from disk) or bytes as the next version of dataset ``name``."""
        if isinstance(data, bytes):
            if filename is None:
                raise UserError("uploading bytes needs a filename (its extension gives the format)")
            content: Any = data
        else:
            path = Path(data)
            filename = filename or path.name
            content = _file_chunks(path)
        params = {"filename": filename, "public": public, **({"format": format} if format else {})}
        return self._call(
            "POST", f"/projects/{_seg(project)}/datasets/{_seg(name)}/versions", params=params, content=content
        )

    def register_builtin(self, project: str, name: str, builtin: str) -> dict[str, Any]:
        return self._call("POST", f"/projects/{_seg(project)}/datasets/{_seg(name)}/builtin", json={"builtin": builtin})

    def datasets(self, project: str, *, limit: int = 50, offset: int = 0) -> dict[str, Any]:
        return self._call("GET", f"/projects/{_seg(project)}/datasets", params={"limit": limit, "offset": offset})

    def dataset(self, project: str, name: str) -> dict[str, Any]:
        return self._call("GET", f"/projects/{_seg(project)}/datasets/{_seg(name)}")

    def dataset_version(self, project: str, name: str, version: int) -> dict[str, Any]:
        return self._call("GET", f"/projects/{_seg(project)}/datasets/{_seg(name)}/versions/{int(version)}")

    def download_dataset(self, project: str, name: str, version: int, dest: str | Path) -> Path:
        """Stream a version's plaintext to ``dest`` and check its SHA-256; returns ``dest``."""
        path = f"/projects/{_seg(project)}/datasets/{_seg(name)}/versions/{int(version)}/download"
        return self._download(path, dest, f"{name} version {version}")

    def delete_dataset(self, project: str, name: str) -> None:
        self._call("DELETE", f"/projects/{_seg(project)}/datasets/{_seg(name)}")

    def rotate_data_key(self) -> dict[str, Any]:
        """Re-encrypt every dataset with the server's current data key (admins only)."""
        return self._call("POST", "/datasets/rotate-key")

    # --- runs and the model registry ---

    def runs(self, project: str, *, job: int | None = None, limit: int = 50, offset: int = 0) -> dict[str, Any]:
        params = {"limit": limit, "offset": offset, **({"job": int(job)} if job else {})}
        return self._call("GET", f"/projects/{_seg(project)}/runs", params=params)

    def run(self, project: str, run_id: int, *, points: int = 500) -> dict[str, Any]:
        """A run's config, metrics over time (``history``, at most ``points`` per metric; the whole
        series through `job_metrics`), artifacts and lineage."""
        return self._call("GET", f"/projects/{_seg(project)}/runs/{int(run_id)}", params={"points": points})

    def download_run_artifact(self, project: str, run_id: int, path: str, dest: str | Path) -> Path:
        """Stream a run's file to ``dest``, checking its SHA-256; returns ``dest``."""
        return self._download(
            f"/projects/{_seg(project)}/runs/{int(run_id)}/artifacts/{_path(path)}", dest, f"{path} of run {run_id}"
        )

    def models(self, project: str, *, limit: int = 50, offset: int = 0) -> dict[str, Any]:
        return self._call("GET", f"/projects/{_seg(project)}/models", params={"limit": limit, "offset": offset})

    def model(self, project: str, name: str) -> dict[str, Any]:
        """A registered model with its versions and aliases."""
        return self._call("GET", f"/projects/{_seg(project)}/models/{_seg(name)}")

    def register_model(self, project: str, run_id: int, name: str) -> dict[str, Any]:
        """Register a run as the next version of model ``name``."""
        return self._call(
            "POST", f"/projects/{_seg(project)}/models/{_seg(name)}/versions", json={"run_id": int(run_id)}
        )

    def model_version(self, project: str, name: str, version: int) -> dict[str, Any]:
        return self._call("GET", f"/projects/{_seg(project)}/models/{_seg(name)}/versions/{int(version)}")

    def download_model_artifact(self, project: str, name: str, version: int, path: str, dest: str | Path) -> Path:
        return self._download(
            f"/projects/{_seg(project)}/models/{_seg(name)}/versions/{int(version)}/artifacts/{_path(path)}",
            dest,
            f"{path} of model {name} version {version}",
        )

    def set_alias(self, project: str, name: str, alias: str, version: int) -> dict[str, Any]:
        path = f"/projects/{_seg(project)}/models/{_seg(name)}/aliases/{_seg(alias)}"
        return self._call("PUT", path, json={"version": int(version)})

    def alias(self, project: str, name: str, alias: str) -> dict[str, Any]:
        """The version ``alias`` points at."""
        return self._call("GET", f"/projects/{_seg(project)}/models/{_seg(name)}/aliases/{_seg(alias)}")

    def delete_alias(self, project: str, name: str, alias: str) -> None:
        self._call("DELETE", f"/projects/{_seg(project)}/models/{_seg(name)}/aliases/{_seg(alias)}")

    # --- serving: deployments, inference keys, inference usage ---

    def deploy(
        self,
        project: str,
        name: str,
        model: str,
        *,
        alias: str | None = None,
        version: int | None = None,
        canary_version: int | None = None,
        canary_percent: float = 0.0,
        runtime: str = "torch",
        precision: str = "fp32",
        max_batch: int = 32,
        max_delay_ms: float = 5.0,
    ) -> dict[str, Any]:
        """Serve ``model``'s ``alias`` (followed as it moves) or ``version`` as deployment ``name``."""
        body = {
            "name": name,
            "model": model,
            "alias": alias,
            "version": version,
            "canary_version": canary_version,
            "canary_percent": canary_percent,
            "runtime": runtime,
            "precision": precision,
            "max_batch": max_batch,
            "max_delay_ms": max_delay_ms,
        }
        return self._call("POST", f"/projects/{_seg(project)}/deployments", json=body)

    def deployments(self, project: str, *, limit: int = 50, offset: int = 0) -> dict[str, Any]:
        return self._call("GET", f"/projects/{_seg(project)}/deployments", params={"limit": limit, "offset": offset})

    def deployment(self, project: str, name: str) -> dict[str, Any]:
        return self._call("GET", f"/projects/{_seg(project)}/deployments/{_seg(name)}")

    def update_deployment(self, project: str, name: str, **changes: Any) -> dict[str, Any]:
        """Change ``canary_version``, ``canary_percent``, ``alias`` or ``version``; only those given."""
        return self._call("PATCH", f"/projects/{_seg(project)}/deployments/{_seg(name)}", json=changes)

    def undeploy(self, project: str, name: str) -> None:
        self._call("DELETE", f"/projects/{_seg(project)}/deployments/{_seg(name)}")

    def create_inference_key(
        self,
        project: str,
        name: str,
        *,
        deployments: list[str] | None = None,
        expires_at: datetime | None = None,
        rate_limit: int | None = None,
        quota: int | None = None,
    ) -> dict[str, Any]:
        """A key for the project's customers; ``result["key"]`` is shown this once."""
        body = {
            "name": name,
            "deployments": deployments,
            "expires_at": expires_at.isoformat() if expires_at else None,
            "rate_limit": rate_limit,
            "quota": quota,
        }
        return self._call("POST", f"/projects/{_seg(project)}/inference-keys", json=body)

    def inference_keys(self, project: str, *, limit: int = 50, offset: int = 0) -> dict[str, Any]:
        return self._call("GET", f"/projects/{_seg(project)}/inference-keys", params={"limit": limit, "offset": offset})

    def revoke_inference_key(self, project: str, key_id: str) -> None:
        self._call("DELETE", f"/projects/{_seg(project)}/inference-keys/{_seg(key_id)}")

    def inference_usage(
        self, project: str, *, since: str | None = None, until: str | None = None, key: str | None = None
    ) -> dict[str, Any]:
        """Requests per caller, deployment and UTC day with their charge, beside the compute cost."""
        params = {k: v for k, v in {"since": since, "until": until, "key": key}.items() if v is not None}
        return self._call("GET", f"/projects/{_seg(project)}/inference-usage", params=params)

    def inference_usage_csv(
        self, project: str, *, since: str | None = None, until: str | None = None, key: str | None = None
    ) -> str:
        """The same rows as `inference_usage`, as CSV text."""
        given = {"since": since, "until": until, "key": key, "format": "csv"}
        params = {k: v for k, v in given.items() if v is not None}
        try:
            response = self._http.get(f"/projects/{_seg(project)}/inference-usage", params=params)
        except httpx.TransportError as e:
            raise UserError(f"cannot reach the modelworks server at {self.url}: {e}") from e
        if response.status_code >= 400:
            raise _error(response)
        return response.text

    # ---

    def _download(self, path: str, dest: str | Path, what: str) -> Path:
        dest = Path(dest)
        try:
            with self._http.stream("GET", path) as response:
                if response.status_code >= 400:
                    response.read()
                    raise _error(response)
                sha = hashlib.sha256()
                with open(dest, "wb") as out:
                    for chunk in response.iter_bytes():
                        sha.update(chunk)
                        out.write(chunk)
        except httpx.TransportError as e:
            raise UserError(f"download from {self.url} failed: {e}") from e
        if sha.hexdigest() != response.headers.get("x-content-sha256"):
            dest.unlink(missing_ok=True)
            raise UserError(f"the download of {what} does not match its SHA-256")
        return dest

    def _call(self, method: str, path: str, **kwargs: Any) -> Any:
        try:
            response = self._http.request(method, path, **kwargs)
        except httpx.TransportError as e:
            raise UserError(f"cannot reach the modelworks server at {self.url}: {e}") from e
        if response.status_code >= 400:
            raise _error(response)
        return response.json() if response.content else None


def _seg(value: str) -> str:
    """One path segment: '/' and '.' travel escaped, so a name can never become path structure."""
    return quote(value, safe="").replace(".", "%2E")


def _path(value: str) -> str:
    """A relative file path: each segment escaped on its own, so only '/' separates them."""
    return "/".join(_seg(part) for part in value.split("/"))


def _file_chunks(path: Path, size: int = 1 << 20) -> Iterator[bytes]:
    with open(path, "rb") as f:
        while chunk := f.read(size):
            yield chunk


def _error(response: httpx.Response) -> ApiError:
    try:
        error = response.json()["error"]
        message, code = str(error["message"]), str(error["code"])
    except (ValueError, KeyError, TypeError):
        message, code = response.text[:500] or response.reason_phrase, "http_error"
    return ApiError(f"{message} (HTTP {response.status_code})", response.status_code, code)
