"""Running a stream consumer: `DatasetSink` (where its windows go) and `consume` (the command's body).

The consumer runs beside ``modelworks up`` with the same ``MODELWORKS_*`` settings (database,
artifact store, data key): it writes versions itself, as the worker writes runs, recorded as the
config's ``user`` (who must be an editor of the project, checked by the one access decision).
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

from modelworks.errors import UserError
from modelworks.platform.access import ProjectAccess, authorize_project
from modelworks.platform.datasets import DataStore
from modelworks.platform.db import make_engine, session_factory
from modelworks.platform.db.models import DatasetVersion
from modelworks.platform.db.streams import DatasetAppend
from modelworks.platform.errors import Conflict
from modelworks.platform.roles import Role
from modelworks.platform.settings import Settings
from modelworks.platform.users import get_user
from modelworks.streams import append
from modelworks.streams.rows import Schema
from modelworks.streams.sources import STREAM_SOURCES, StreamConfig

log = logging.getLogger("modelworks.streams")
RETRIES = 5  # a window that met another version being added at the same moment is stored again


class DatasetSink:
    """The dataset a consumer appends its windows to; every call opens its own session."""

    def __init__(self, settings: Settings, project: str, dataset: str, user: str) -> None:
        self.engine = make_engine(settings.database_url)
        self.sessions = session_factory(self.engine)
        self.datastore = DataStore.from_settings(settings)
        self.project, self.dataset, self.user = project, dataset, user
        with self.sessions() as session:
            self._access(session)  # refused now, before anything is read from the source

    def _access(self, session: Any) -> ProjectAccess:
        return authorize_project(session, get_user(session, self.user), self.project, Role.editor)

    def schema(self) -> Schema | None:
        """The newest version's schema, or None before the dataset's first rows."""
        with self.sessions() as session:
            return append.latest_schema(session, self._access(session).project, self.dataset)

    def last_window(self, source_key: str) -> DatasetAppend | None:
        with self.sessions() as session:
            found = append.last_window(session, self._access(session).project, self.dataset, source_key)
            if found is not None:
                session.expunge(found)
            return found

    def holds(self, source_key: str, first_offset: str) -> bool:
        with self.sessions() as session:
            return append.holds_offset(session, self._access(session).project, self.dataset, source_key, first_offset)

    def store(self, records: list[dict[str, Any]], window: append.Window) -> int:
        """Store a window as the dataset's next version (committed with its offsets); its number."""
        for attempt in range(RETRIES):
            try:
                with self.sessions() as session:
                    row: DatasetVersion = append.append_rows(
                        session, self.datastore, self._access(session), self.dataset, records, window
                    )
                    return row.version
            except Conflict:
                if attempt == RETRIES - 1:
                    raise
                time.sleep(0.2 * (attempt + 1))
        raise AssertionError("unreachable")

    def close(self) -> None:
        self.engine.dispose()


def consume(
    config: StreamConfig, settings: Settings, *, once: bool = False, stop: threading.Event | None = None
) -> None:
    """Run the configured source's consumer until ``stop`` is set (or, with ``once``, until what is
    there now is stored)."""
    entry = STREAM_SOURCES.get(config.source.type, where="source.type")
    try:
        consumer_class = entry.impl
    except ImportError as e:
        raise UserError(f"the {config.source.type} source needs {e.name}: pip install 'modelworks[streams]'") from None
    sink = DatasetSink(settings, config.project, config.dataset, config.user)
    try:
        consumer = consumer_class(config.source, sink)
        log.info("consuming %s into dataset %s of project %s", consumer.source_key, config.dataset, config.project)
        consumer.run(stop or threading.Event(), once=once)
    finally:
        sink.close()
