"""The artifact store: files under one root, on any filesystem fsspec knows.

``MODELWORKS_ARTIFACTS`` is a local folder (the default, ``<home>/artifacts``) or a URL such as
``s3://bucket/prefix`` or ``memory://name``. Keys are relative paths that this code builds
from database ids and fixed names only — never from user input — and are checked anyway.

For S3-compatible stores (MinIO, Ceph, R2 ...) the endpoint and credentials come from the usual
environment: ``AWS_ENDPOINT_URL``, ``AWS_ACCESS_KEY_ID``, ``AWS_SECRET_ACCESS_KEY`` (s3fs is
needed: ``pip install 'modelworks[s3]'``). Other processes write to a remote store too (job
children upload their runs), so listings are never served from fsspec's cache.
"""

from __future__ import annotations

from pathlib import Path
from typing import BinaryIO

from fsspec.core import url_to_fs

from modelworks.errors import UserError
from modelworks.platform.archive import check_member_name


class Storage:
    """Objects under ``root`` (a path or fsspec URL)."""

    def __init__(self, root: str) -> None:
        self.url = root
        try:
            self.fs, self.root = url_to_fs(root)
        except (ImportError, ValueError) as e:
            raise UserError(f"the artifact store {root!r} cannot be opened: {e}") from e
        self.root = self.root.rstrip("/")
        self.is_local = "file" in self.fs.protocol

    def path(self, key: str) -> str:
        return f"{self.root}/{check_member_name(key, 'storage key')}"

    def local_path(self, key: str) -> Path | None:
        """Where ``key`` lies on this machine's disk, for a local store; None for a remote one."""
        return Path(self.path(key)) if self.is_local else None

    def _fresh(self, path: str) -> str:
        if not self.is_local:
            self.fs.invalidate_cache(path)
        return path

    def upload(self, source: Path, key: str) -> None:
        """Copy the local file ``source`` to ``key``."""
        path = self.path(key)
        if self.is_local:
            self.fs.makedirs(path.rsplit("/", 1)[0], exist_ok=True)
        self.fs.put_file(str(source), path)

    def open(self, key: str, mode: str = "rb") -> BinaryIO:
        """Open an object; writing creates its parent folders first (local filesystems need them)."""
        path = self.path(key)
        if "w" in mode:
            self.fs.makedirs(path.rsplit("/", 1)[0], exist_ok=True)
        return self.fs.open(path, mode)

    def exists(self, key: str) -> bool:
        return self.fs.exists(self._fresh(self.path(key)))

    def size(self, key: str) -> int:
        return int(self.fs.size(self.path(key)))

    def move(self, source: str, dest: str) -> None:
        self.fs.mv(self.path(source), self.path(dest))

    def remove(self, key: str) -> None:
        """Remove an object, or a folder and everything in it; a missing one is fine."""
        path = self._fresh(self.path(key))
        if self.fs.exists(path):
            self.fs.rm(path, recursive=True)

    def listdir(self, key: str) -> list[str]:
        path = self._fresh(self.path(key))
        return [p.rsplit("/", 1)[-1] for p in self.fs.ls(path, detail=False)] if self.fs.exists(path) else []
