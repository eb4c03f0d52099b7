"""The bounds of every integer a request can send to the database, declared once.

Ids, versions and sequence numbers are ``INTEGER`` columns (32-bit on PostgreSQL), and SQLite's
driver raises ``OverflowError`` on anything past 64 bits: an unbounded ``int`` from a request is
a 500 waiting to happen. Path, query and body parameters that reach the database use these types
(FastAPI and pydantic both read the bounds), so an out-of-range value is a 422 and the database
never sees it.
"""

from __future__ import annotations

from typing import Annotated

from annotated_types import Ge, Le

MAX_ID = 2**31 - 1  # the largest INTEGER on PostgreSQL
MAX_OFFSET = 1_000_000_000  # rows a page may skip

DbId = Annotated[int, Ge(1), Le(MAX_ID)]
"""A row id or a version number: 1 .. 2**31 - 1."""

SeqNo = Annotated[int, Ge(0), Le(MAX_ID)]
"""A position in a sequence (a log line's seq, ``since=``): 0 .. 2**31 - 1."""

Offset = Annotated[int, Ge(0), Le(MAX_OFFSET)]
"""Rows to skip in a page: 0 .. 10**9."""
