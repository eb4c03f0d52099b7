"""A Python client for the platform API.

    client = modelworks.Client("http://127.0.0.1:8000", token)
    client.create_project("vision")
    client.set_member("vision", "ada", "editor")
    client.projects()["items"]

Methods return the server's JSON (dicts; lists come as pages ``{"items", "total", "limit",
"offset"}``). A refused request raises `ApiError` — a `UserError` carrying the server's message
and status — so the CLI shows it as one line.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any
from urllib.parse import quote

import httpx

from modelworks.errors import UserError

API_PREFIX = "/api/v1"


class ApiError(UserError):
    """The server refused a request; ``status`` is the HTTP status, ``code`` the error code."""

    def __init__(self, message: str, status: int, code: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code


class Client:
    """The platform API at ``url``, acting as the owner of ``token``."""

    def __init__(self, url: str, token: str, *, timeout: float = 30.0, transport: httpx.BaseTransport | None = None) -> None:
        self.url = url.rstrip("/")
        self._http = httpx.Client(base_url=self.url + API_PREFIX, headers={"Authorization": f"Bearer {token}"}, timeout=timeout, transport=transport)

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> "Client":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- users and tokens ---

    def me(self) -> dict[str, Any]:
        return self._call("GET", "/users/me")

    def create_user(self, name: str, *, is_admin: bool = False) -> dict[str, Any]:
        """Create a user (admins only); the result's ``token.token`` is their first token."""
        return self._call("POST", "/users", json={"name": name, "is_admin": is_admin})

    def create_token(self, name: str, *, expires_at: datetime | None = None) -> dict[str, Any]:
        """A new token for yourself; ``result["token"]`` is shown this once."""
        return self._call("POST", "/tokens", json={"name": name, "expires_at": expires_at.isoformat() if expires_at else None})

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

    # ---

    def _call(self, method: str, path: str, **kwargs: Any) -> Any:
        try:
            response = self._http.request(method, path, **kwargs)
        except httpx.TransportError as e:
            raise UserError(f"cannot reach the modelworks server at {self.url}: {e}") from None
        if response.status_code >= 400:
            raise _error(response)
        return response.json() if response.content else None


def _seg(value: str) -> str:
    """One path segment: '/' and '.' travel escaped, so a name can never become path structure."""
    return quote(value, safe="").replace(".", "%2E")


def _error(response: httpx.Response) -> ApiError:
    try:
        error = response.json()["error"]
        message, code = str(error["message"]), str(error["code"])
    except (ValueError, KeyError, TypeError):
        message, code = response.text[:500] or response.reason_phrase, "http_error"
    return ApiError(f"{message} (HTTP {response.status_code})", response.status_code, code)
