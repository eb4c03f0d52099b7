"""A serving replica's scratch folder: its models' verified files, removed when it stops.

Each replica holds an exclusive lock (``flock``) on a file in its own folder while it lives; the
kernel drops the lock when the process dies, ``kill -9`` included. On start, a replica removes
the folders of replicas that share its data folder and no longer hold their lock: a killed
replica's files are gone by the next start. A live replica's folder is never touched.
"""

from __future__ import annotations

import fcntl
import shutil
import time
from pathlib import Path
from typing import IO

LOCK = ".replica.lock"
UNLOCKED_GRACE_S = 60.0  # a folder without a lock file yet may belong to a replica that is just starting


class Scratch:
    """`root`/`replica`, locked from `open` to `close`; `open` sweeps dead replicas' folders."""

    def __init__(self, root: Path, replica: str) -> None:
        self.root = Path(root)
        self.folder = self.root / replica
        self._lock: IO[bytes] | None = None

    def open(self) -> list[Path]:
        """Make and lock this replica's folder; the folders of dead replicas removed (returned)."""
        self.folder.mkdir(parents=True, exist_ok=True)
        self._lock = open(self.folder / LOCK, "wb")
        fcntl.flock(self._lock, fcntl.LOCK_EX | fcntl.LOCK_NB)  # our own name: fails only if reused while alive
        return [folder for folder in sorted(self.root.iterdir()) if folder != self.folder and _sweep(folder)]

    def close(self) -> None:
        shutil.rmtree(self.folder, ignore_errors=True)
        if self._lock is not None:
            self._lock.close()
            self._lock = None


def _sweep(folder: Path) -> bool:
    """Remove `folder` when no live replica holds it; whether it was removed."""
    if not folder.is_dir() or folder.is_symlink():
        return False
    try:
        lock = open(folder / LOCK, "rb")
    except FileNotFoundError:
        if time.time() - folder.stat().st_mtime < UNLOCKED_GRACE_S:
            return False
        shutil.rmtree(folder, ignore_errors=True)
        return True
    with lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            return False  # alive
        shutil.rmtree(folder, ignore_errors=True)
    return True


__all__ = ["Scratch"]
