"""One row of a project by its name, or the 404 user error that says what is missing where."""

from __future__ import annotations

from typing import Any, TypeVar

from sqlalchemy import select
from sqlalchemy.orm import Session

from modelworks.platform.db.models import Project
from modelworks.platform.errors import NotFound
from modelworks.platform.names import check_name

T = TypeVar("T")


def find_named(session: Session, table: type[T], kind: str, project: Project, name: str) -> T:
    """The row of ``table`` (a table with ``project_id`` and ``name``) named ``name`` in ``project``;
    an invalid name is a UserError, a missing row ``NotFound("no KIND named NAME in project P")``."""
    check_name(kind, name)
    columns: Any = table  # the mapped class: its columns are class attributes
    row = session.scalar(select(table).where(columns.project_id == project.id, columns.name == name))
    if row is None:
        raise NotFound(f"no {kind} named {name!r} in project {project.name!r}")
    return row
