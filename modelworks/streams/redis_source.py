"""The Redis Streams source: a consumer group read in windows, each stored before it is acknowledged.

Exactly once, across crashes: a window's entries are acknowledged (XACK) only after the version
that holds them has committed, together with the window's first and last entry ids
(`DatasetAppend`). A consumer killed at any moment restarts by reading its own pending entries
(delivered, never acknowledged) from the start: those at or before the last stored window's last
id were stored already (the crash came between the commit and the XACK) and are only
acknowledged now; the others are gathered into windows again. Nothing is lost (an entry leaves the
pending list only once stored) and nothing is stored twice (stream ids only grow, and each window
is checked against the last one stored). This holds for one consumer per group and dataset, which
is what `RedisSource.consumer` names.

An entry that cannot be a row of the dataset (not JSON, a wrong column or type) would block the
stream forever: it is copied to ``<stream>:rejected`` with the reason, acknowledged and logged.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from typing import Any

import redis

from modelworks.errors import UserError
from modelworks.streams.append import Window
from modelworks.streams.rows import Schema, check_records, typed_record
from modelworks.streams.sources import RedisSource

log = logging.getLogger("modelworks.streams.redis")
Entry = tuple[str, dict[str, Any]]  # (entry id, row)


def entry_order(entry_id: str) -> tuple[int, int]:
    """A stream entry id ``<ms>-<seq>`` as a sortable pair."""
    ms, _, seq = entry_id.partition("-")
    return int(ms), int(seq or 0)


class RedisConsumer:
    """Reads `RedisSource` ``config.stream`` as ``config.consumer`` of ``config.group`` into ``sink``."""

    def __init__(self, config: RedisSource, sink: Any) -> None:
        self.config, self.sink = config, sink
        self.redis = redis.Redis.from_url(config.url, decode_responses=True)
        self.source_key = f"redis:{config.stream}/{config.group}"
        self.stored_up_to: str | None = None  # the last stored window's last entry id
        self.schema: Schema | None = None

    def start(self) -> None:
        """Join the group (made at the stream's start when missing) and read what is stored."""
        try:
            self.redis.xgroup_create(self.config.stream, self.config.group, id="0", mkstream=True)
        except redis.ResponseError as e:
            if "BUSYGROUP" not in str(e):
                raise
        except redis.ConnectionError as e:
            raise UserError(f"cannot reach Redis at {self.config.url}: {e}") from None
        last = self.sink.last_window(self.source_key)
        self.stored_up_to = last.last_offset if last is not None else None
        self.schema = self.sink.schema()

    # --- reading

    def read(self, cursor: str, block_ms: int | None) -> list[tuple[str, dict[str, str]]]:
        """Up to a window of entries: ours still pending after ``cursor``, or (``cursor`` ">") new ones."""
        c = self.config
        answer = self.redis.xreadgroup(c.group, c.consumer, {c.stream: cursor}, count=c.window_rows, block=block_ms)
        return [(entry_id, fields) for _, entries in answer or [] for entry_id, fields in entries if fields is not None]

    def accept(self, entry_id: str, fields: dict[str, str], window: list[Entry]) -> bool:
        """Add an entry's row to ``window``; False when it was stored before (it is acknowledged)
        or cannot be a row (it is set aside and acknowledged)."""
        if self.stored_up_to is not None and entry_order(entry_id) <= entry_order(self.stored_up_to):
            self.redis.xack(self.config.stream, self.config.group, entry_id)
            log.info("entry %s was stored before this consumer stopped; acknowledged", entry_id)
            return False
        try:
            row = self._row(entry_id, fields, window)
        except (UserError, ValueError) as e:
            self.redis.xadd(f"{self.config.stream}:rejected", {**fields, "_id": entry_id, "_error": str(e)})
            self.redis.xack(self.config.stream, self.config.group, entry_id)
            log.warning("entry %s rejected (copied to %s:rejected): %s", entry_id, self.config.stream, e)
            return False
        window.append((entry_id, row))
        return True

    def _row(self, entry_id: str, fields: dict[str, str], window: list[Entry]) -> dict[str, Any]:
        if self.config.field in fields:
            row = json.loads(fields[self.config.field])
        else:
            row = typed_record(fields, self.schema, 1)
        if not isinstance(row, dict):
            raise UserError("the row must be a JSON object of column: value")
        if self.schema is not None:
            check_records([row], self.schema)
        elif window and list(row) != list(window[0][1]):
            raise UserError(f"its columns ({', '.join(row)}) differ from the window's ({', '.join(window[0][1])})")
        return row

    # --- storing

    def store(self, window: list[Entry]) -> int:
        """Store ``window`` as the dataset's next version, recording its first and last entry ids."""
        first, last = window[0][0], window[-1][0]
        detail = {"stream": self.config.stream, "group": self.config.group, "entries": len(window)}
        version = self.sink.store([row for _, row in window], Window("redis", self.source_key, first, last, detail))
        self.stored_up_to = last
        if self.schema is None:
            self.schema = self.sink.schema()
        log.info("stored entries %s..%s (%d rows) as version %d", first, last, len(window), version)
        return version

    def ack(self, window: list[Entry]) -> None:
        self.redis.xack(self.config.stream, self.config.group, *[entry_id for entry_id, _ in window])

    def flush(self, window: list[Entry]) -> None:
        self.store(window)
        self.ack(window)
        window.clear()

    # --- the loop

    def run(self, stop: threading.Event, once: bool = False) -> None:
        """Our pending entries first, then new ones, in windows of ``window_rows`` rows or
        ``window_seconds``; with ``once``, stop when nothing new arrives (storing what is left)."""
        self.start()
        window: list[Entry] = []
        opened = 0.0  # when the window's first row arrived
        cursor = "0"  # pending entries after this id; then ">" (new ones)
        while not stop.is_set():
            wait = None
            if cursor == ">":
                wait = self.config.block_ms
                if window:  # no longer than the window has left
                    left = self.config.window_seconds - (time.monotonic() - opened)
                    wait = max(10, min(wait, int(left * 1000)))
            entries = self.read(cursor, wait)
            if cursor != ">":
                if not entries:
                    cursor = ">"
                    continue
                cursor = entries[-1][0]
            for entry_id, fields in entries:
                if self.accept(entry_id, fields, window) and len(window) == 1:
                    opened = time.monotonic()
                if len(window) >= self.config.window_rows:
                    self.flush(window)
            timed_out = window and time.monotonic() - opened >= self.config.window_seconds
            if timed_out or (once and cursor == ">" and not entries and window):
                self.flush(window)
            if once and cursor == ">" and not entries:
                return
