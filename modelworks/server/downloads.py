"""Downloads: a stored file streamed as raw bytes, its size, name and SHA-256 in the headers.

`Download` is both what a download route returns and its ``response_class``, so the OpenAPI
document (`modelworks.server.openapi`) states the real media type and headers of every download.
"""

from __future__ import annotations

from collections.abc import AsyncIterable, Iterable
from typing import Any, ClassVar
from urllib.parse import quote

from fastapi.responses import StreamingResponse


class Download(StreamingResponse):
    """A file as ``application/octet-stream``, with ``Content-Length``, ``Content-Disposition``
    (the file's name) and ``X-Content-SHA256`` (for the client to check what it received)."""

    media_type = "application/octet-stream"
    # As OpenAPI header objects: what every download carries.
    HEADERS: ClassVar[dict[str, dict[str, Any]]] = {
        "Content-Length": {"description": "the file's size in bytes", "schema": {"type": "integer", "minimum": 0}},
        "Content-Disposition": {"description": "attachment, with the file's name", "schema": {"type": "string"}},
        "X-Content-SHA256": {
            "description": "the SHA-256 of the file, hex",
            "schema": {"type": "string", "pattern": "^[0-9a-f]{64}$"},
        },
    }

    def __init__(
        self,
        chunks: Iterable[bytes] | AsyncIterable[bytes],
        *,
        size: int,
        sha256: str,
        filename: str,
        status_code: int = 200,
    ) -> None:
        headers = {
            "Content-Length": str(size),
            "X-Content-SHA256": sha256,
            "Content-Disposition": f"attachment; filename*=UTF-8''{quote(filename, safe='')}",
        }
        super().__init__(chunks, status_code=status_code, media_type=self.media_type, headers=headers)
