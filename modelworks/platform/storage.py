"""The artifact store: files under one root, on any filesystem fsspec knows.

``MODELWORKS_ARTIFACTS`` is a local folder (the default, ``<home>/artifacts``) or a URL such as
``s3://bucket/prefix`` or ``memory://name``. Keys are relative paths that this code builds
from database ids and fixed names only — never from user input — and are checked anyway.
"""

from __future__ import annotations

from typing import BinaryIO

from fsspec.core import url_to_fs

from modelworks.platform.archive import check_member_name


class Storage:
    """Objects under ``root`` (a path or fsspec URL)."""

    def __init__(self, root: str) -> None:
        self.url = root
        self.fs, self.root = url_to_fs(root)
        self.root = self.root.rstrip("/")

    def path(self, key: str) -> str:
        return f"{self.root}/{check_member_name(key, 'storage key')}"

    def open(self, key: str, mode: str = "rb") -> BinaryIO:
        """Open an object; writing creates its parent folders first (local filesystems need them)."""
        path = self.path(key)
        if "w" in mode:
            self.fs.makedirs(path.rsplit("/", 1)[0], exist_ok=True)
        return self.fs.open(path, mode)

    def exists(self, key: str) -> bool:
        return self.fs.exists(self.path(key))

    def size(self, key: str) -> int:
        return int(self.fs.size(self.path(key)))

    def move(self, source: str, dest: str) -> None:
        self.fs.mv(self.path(source), self.path(dest))

    def remove(self, key: str) -> None:
        """Remove an object, or a folder and everything in it; a missing one is fine."""
        path = self.path(key)
        if self.fs.exists(path):
            self.fs.rm(path, recursive=True)

    def listdir(self, key: str) -> list[str]:
        path = self.path(key)
        return [p.rsplit("/", 1)[-1] for p in self.fs.ls(path, detail=False)] if self.fs.exists(path) else []

