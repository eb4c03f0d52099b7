"""The folder source: files of rows added to a folder become windows, each file stored once.

A file is taken once it matches one of ``patterns`` and has not changed for ``settle_seconds``
(write it elsewhere and move it in to be safe). It is read by the engine's own reader for its
format and stored as the dataset's next version with its name as the window's offset and its
SHA-256 in the record, in the same transaction (`DatasetAppend`): a file whose name is recorded
is never stored again, after any crash. A file that cannot be read, or whose rows do not fit the
dataset, is logged once per run and left where it is.
"""

from __future__ import annotations

import fnmatch
import hashlib
import logging
import threading
import time
from pathlib import Path
from typing import Any

from modelworks.config.schema import DataConfig
from modelworks.data.sources import read_source
from modelworks.errors import UserError
from modelworks.platform.uploads import json_records
from modelworks.streams.append import Window
from modelworks.streams.sources import FolderSource

log = logging.getLogger("modelworks.streams.folder")


class FolderConsumer:
    """Stores each new file of `FolderSource` ``config.path`` as a version of ``sink``'s dataset."""

    def __init__(self, config: FolderSource, sink: Any) -> None:
        self.config, self.sink = config, sink
        self.folder = Path(config.path).expanduser().resolve()
        if not self.folder.is_dir():
            raise UserError(f"source.path: {self.folder} is not a folder")
        self.source_key = f"folder:{self.folder}"
        self._refused: set[tuple[str, float]] = set()  # (name, mtime) already logged as unreadable

    def ready(self) -> list[Path]:
        """The folder's settled files that match, by name."""
        now, found = time.time(), []
        for path in sorted(self.folder.iterdir()):
            if not path.is_file() or not any(fnmatch.fnmatch(path.name, p) for p in self.config.patterns):
                continue
            if now - path.stat().st_mtime >= self.config.settle_seconds:
                found.append(path)
        return found

    def take(self, path: Path) -> int | None:
        """Store ``path`` unless it is stored already; the version it became, or None."""
        if self.sink.holds(self.source_key, path.name):
            return None
        mtime = path.stat().st_mtime
        try:
            loaded = read_source(DataConfig(source=str(path)), self.folder, require_target=False)
            records = json_records(loaded.frame)
            sha256 = hashlib.sha256(path.read_bytes()).hexdigest()
            detail = {"file": path.name, "sha256": sha256, "bytes": path.stat().st_size}
            version = self.sink.store(records, Window("folder", self.source_key, path.name, path.name, detail))
        except UserError as e:
            if (path.name, mtime) not in self._refused:
                self._refused.add((path.name, mtime))
                log.warning("file %s not stored: %s", path.name, e)
            return None
        log.info("stored file %s (%d rows) as version %d", path.name, len(records), version)
        return version

    def run(self, stop: threading.Event, once: bool = False) -> None:
        """Take every settled file, every ``poll_seconds``; with ``once``, one pass."""
        while not stop.is_set():
            for path in self.ready():
                if stop.is_set():
                    return
                self.take(path)
            if once:
                return
            stop.wait(self.config.poll_seconds)
