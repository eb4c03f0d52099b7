"""`modelworks.Client`'s calls for data arrival: appending rows to a dataset, the windows its
versions hold, a deployment's request log and feedback labels. Mixed into `Client`, whose
``_call`` they use; kept apart so that each file stays readable on its own."""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import quote


def _seg(value: str) -> str:
    return quote(value, safe="").replace(".", "%2E")  # as `modelworks.client._seg`: a name stays one segment


class StreamCalls:
    """Data-arrival methods of `modelworks.Client`."""

    def _call(self, method: str, path: str, **kwargs: Any) -> Any:  # pragma: no cover - Client's own
        raise NotImplementedError

    def append_rows(
        self, project: str, name: str, rows: list[dict[str, Any]] | str | Path | bytes, *, public: bool = False
    ) -> dict[str, Any]:
        """Append rows to dataset ``name`` as its next version: a list of dicts, or a CSV file (a path,
        or its bytes); ``public`` only counts for a dataset's first rows. The answer's ``appended``
        says how many rows it added, and after which version."""
        path = f"/projects/{_seg(project)}/datasets/{_seg(name)}/rows"
        if isinstance(rows, list):
            return self._call("POST", path, params={"public": public}, json=rows)
        content = rows if isinstance(rows, bytes) else Path(rows).read_bytes()
        headers = {"Content-Type": "text/csv"}
        return self._call("POST", path, params={"public": public}, content=content, headers=headers)

    def dataset_windows(self, project: str, name: str, *, limit: int = 50, offset: int = 0) -> dict[str, Any]:
        """Dataset ``name``'s appended versions (newest first): rows added, origin and offsets."""
        params = {"limit": limit, "offset": offset}
        return self._call("GET", f"/projects/{_seg(project)}/datasets/{_seg(name)}/windows", params=params)

    def set_request_log(
        self, project: str, deployment: str, enabled: bool, *, dataset: str | None = None, window_rows: int = 1,
        max_age_s: float | None = None,
    ) -> dict[str, Any]:  # fmt: skip
        """Log a deployment's /predict rows (sealed) so that feedback can label them; labelled rows go
        to ``dataset`` (default ``<deployment>-feedback``), a version per ``window_rows`` of them or
        once the oldest has waited ``max_age_s`` seconds."""
        body = {"enabled": enabled, "dataset": dataset, "window_rows": window_rows, "max_age_s": max_age_s}
        return self._call("PUT", f"/projects/{_seg(project)}/deployments/{_seg(deployment)}/request-log", json=body)

    def request_log(self, project: str, deployment: str) -> dict[str, Any]:
        return self._call("GET", f"/projects/{_seg(project)}/deployments/{_seg(deployment)}/request-log")

    def feedback(self, project: str, deployment: str, request_id: str, label: Any, *, row: int = 0) -> dict[str, Any]:
        """The true label of row ``row`` of a logged request (its answer's ``Request-Id`` header)."""
        body = {"request_id": request_id, "row": row, "label": label}
        return self._call("POST", f"/projects/{_seg(project)}/deployments/{_seg(deployment)}/feedback", json=body)

    def flush_feedback(self, project: str, deployment: str) -> dict[str, Any]:
        """Store the deployment's labelled rows now, however few; ``version`` is null when none waited."""
        return self._call("POST", f"/projects/{_seg(project)}/deployments/{_seg(deployment)}/feedback/flush")
